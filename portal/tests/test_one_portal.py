"""Issue 13.2, one portal: one permission decorator and 403 page, one invalid-field class, a nav that shows
what the member may use and marks where they are (the integrations pages included)."""

import re

import pytest
from django.urls import reverse

from marketplace.tests.factories import FORM_DATA

pytestmark = pytest.mark.django_db

MANAGER_PAGES = [
    "portal:team",
    "portal:billing",
    "portal:subscriptions",
    "portal:api_keys",
    "portal:webhooks",
]


def _nav(html: str) -> str:
    return re.search(r'<nav class="topbar__nav".*?</nav>', html, re.S).group(0)


def _nav_links(html: str) -> list[str]:
    return re.findall(r">([^<>]+)</a>", _nav(html))


def _current(html: str) -> list[str]:
    return re.findall(r'aria-current="page">([^<]+)</a>', _nav(html))


@pytest.mark.parametrize("page", ["portal:api_keys", "portal:webhooks"])
def test_the_integrations_pages_mark_their_nav_item(client, owner, page):
    """Issue 13.2: the integrations pages set nav="integrations", which no nav item answered to, so none was
    marked as the current page."""
    client.force_login(owner)
    assert _current(client.get(reverse(page)).content.decode()) == ["Integrations"]


def test_the_nav_shows_an_officer_what_an_officer_may_use(client, officer):
    """Issue 13.2: analytics is open to every member, yet the nav linked it for owners and managers only;
    the pages an officer may not open are not linked."""
    client.force_login(officer)
    links = _nav_links(client.get(reverse("portal:inbox")).content.decode())
    assert links == ["Inbox", "My day", "Returns", "Analytics"]
    assert client.get(reverse("portal:analytics")).status_code == 200
    # Issue 15: an officer has My day and their own profile (their name); the lender's messages and
    # sequences are the managers'.
    assert client.get(reverse("portal:my_day")).status_code == 200
    assert client.get(reverse("portal:profile")).status_code == 200
    assert client.get(reverse("portal:first_touch")).status_code == 403
    assert client.get(reverse("portal:sequences")).status_code == 403


def test_the_nav_shows_an_owner_every_section(client, owner):
    client.force_login(owner)
    links = _nav_links(client.get(reverse("portal:inbox")).content.decode())
    assert links == [
        "Inbox",
        "My day",
        "Returns",
        "Analytics",
        "Subscriptions",
        "Billing",
        "Team",
        "Assignment",
        "Integrations",
        "Settings",
    ]


def test_every_page_for_managers_refuses_an_officer_with_the_same_page(client, officer):
    """Issue 13.2: three manager_required decorators answered with three different 403 pages."""
    client.force_login(officer)
    headings = set()
    for page in MANAGER_PAGES:
        response = client.get(reverse(page))
        assert response.status_code == 403, page
        headings.add(re.search(r"<h1[^>]*>(.*?)</h1>", response.content.decode(), re.S).group(1))
    assert headings == {"This page is for an owner or a manager"}


def test_an_invalid_field_has_one_class_on_the_public_form_and_in_the_portal(client, owner):
    """Issue 13.2: the public form marked an invalid field `field--error`, the portal `field--invalid`."""
    public = client.post(reverse("leads:form"), {**FORM_DATA, "zip_code": "00000"}).content.decode()
    client.force_login(owner)
    portal = client.post(reverse("portal:billing"), {"low_balance_threshold": "-5"}).content.decode()
    for html in (public, portal):
        assert "field--invalid" in html and "field--error" not in html
