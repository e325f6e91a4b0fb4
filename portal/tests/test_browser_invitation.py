"""The whole invitation in a real browser: the owner invites, the new officer opens the e-mailed link in a
browser of their own, chooses a password, and signs in with it later."""

import re

import pytest
from django.core import mail
from playwright.sync_api import expect

from lenders.models import Membership
from portal.tests.browser import login

pytest_plugins = ["portal.tests.browser"]
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NEW_PASSWORD = "harbor-violet-73-quill"


def test_an_invited_officer_joins_and_signs_in(browser_page, _chromium, live_server, owner):
    """Issue 11.14: the join page sent `Referrer-Policy: no-referrer`, so the browser posted the form with
    `Origin: null` and Django's CSRF check answered 403. Django's test client sends no Origin at all, so
    only a browser shows it: invite, open the link in a fresh browser, set a password, log in."""
    login(browser_page, live_server, "owner")
    browser_page.goto(f"{live_server.url}/portal/team/")
    browser_page.get_by_label("E-mail").fill("new.officer@example.com")
    browser_page.get_by_label("Role").select_option("officer")
    browser_page.get_by_role("button", name="Send invitation").click()
    expect(browser_page.get_by_text("Invitation sent to new.officer@example.com")).to_be_visible()

    [message] = mail.outbox
    link = re.search(r"https?://\S+/portal/join/\S+/", message.body).group(0)
    link = live_server.url + link[link.index("/portal/") :]  # SITE_URL is not the live server's port

    # The invited officer's own browser: no cookies, no session, nothing shared with the owner's.
    context = _chromium.new_context()
    context.set_default_timeout(10_000)
    try:
        page = context.new_page()
        origins = []
        page.on(
            "request",
            lambda r: origins.append(r.headers.get("origin")) if r.method == "POST" else None,
        )
        page.goto(link)
        expect(page.get_by_role("heading", name="Join Lone Star Lending")).to_be_visible()
        page.get_by_label("First name").fill("Nora")
        page.get_by_label("Last name").fill("Quinn")
        page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
        page.get_by_label("New password confirmation").fill(NEW_PASSWORD)
        page.get_by_role("button", name="Set password and sign in").click()
        page.get_by_role("heading", name="Inbox").wait_for()
        expect(page.get_by_text("Welcome to Lone Star Lending.")).to_be_visible()
        assert origins == [live_server.url]  # the real origin, which the CSRF check accepts

        page.get_by_role("button", name="Log out").click()
        page.wait_for_url(f"{live_server.url}/portal/login/**")
        login(page, live_server, "new.officer@example.com", NEW_PASSWORD)
        expect(page.locator(".topbar__who")).to_contain_text("Nora Quinn")
        expect(page.locator(".topbar__role")).to_have_text("Loan officer")
    finally:
        context.close()
    membership = Membership.objects.get(user__username="new.officer@example.com")
    assert (membership.lender_id, membership.role) == (owner.membership.lender_id, "officer")
