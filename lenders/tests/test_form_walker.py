"""Issue 11.9: every form of the portal and the public site, walked as a person would meet it: each page is
fetched (as the lender's owner, or as a visitor for the public pages), its forms are read from the HTML, and
each is sent back with hypothesis-generated values per field (huge, negative, far dates, Unicode, empty,
alongside the page's own values) and its CSRF token, through a client that enforces CSRF. No answer may be
a 5xx: bad input is a message, as the schemathesis run demands of the API.

Each example runs in a savepoint that is rolled back, so examples are independent and a database error in
one is reported as itself, not as the aborted transaction of the next.
"""

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import urlencode, urljoin

import pytest
from django.conf import settings as django_settings
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from integrations.models import WebhookEndpoint, WebhookMessage
from integrations.services import api_key_create, webhook_secret_new
from lenders.models import AssignmentRule, Invitation, Membership
from lenders.team import token_hash
from marketplace.models import FollowUp
from marketplace.tests.factories import FORM_DATA, MemberFactory, make_subscription

from .test_portal import sell

pytestmark = pytest.mark.django_db

# Hypothesis examples per field, after its type's extremes: two where a person types, one where the page
# offers choices (or hides the field). The walk stays well under a minute.
TYPED_EXAMPLES, CHOSEN_EXAMPLES = 2, 1
CHOSEN_KINDS = ("hidden", "select", "radio", "checkbox", "submit")
INVITATION_TOKEN = "walker-invitation-token"
STATUSES: Counter[int] = Counter()  # what the walk got back, printed with -s: a walk of 403s tests nothing
# Forms whose use ends the walk rather than testing input: signing out.
SKIP_ACTIONS = ("/portal/logout/",)

# Values that broke pages before, or could: out of every column's range, far dates, numbers in other
# scripts, control and direction characters, very long text.
NASTY = [
    "",
    " ",
    "0",
    "-1",
    "99999999999999",
    "-99999999999999",
    "2147483648",
    "9" * 400,
    "1e308",
    "1e-308",
    "NaN",
    "Infinity",
    "-0.001",
    "0.0000001",
    "9999-12-31",
    "9999-12-31T23:59",
    "0001-01-01",
    "0001-01-01T00:00",
    "10000-01-01",
    "2026-02-30",
    "24:61",
    "٣٤٥",
    "𝟗𝟗𝟗",
    "é\u0301",
    "\u202egnp.exe",
    "\x00",
    "😀" * 20,
    "x" * 5000,
    "' OR 1=1 --",
    "<script>alert(1)</script>",
    "=HYPERLINK(1)",
    "user@例え.jp",
    "http://127.0.0.1:1/",
]

# By input type, the values most likely to get past the browser's own checks and hurt.
BY_TYPE = {
    "number": ["99999999999999", "2147483648", "-1", "1e308", "NaN"],
    "date": ["9999-12-31", "0001-01-01", "10000-01-01"],
    "datetime-local": ["9999-12-31T23:59", "0001-01-01T00:00", "2026-03-08T02:30"],
    "time": ["24:00", "99:99"],
    "email": ["x" * 300 + "@example.com", "user@例え.jp"],
    "url": ["https://" + "a" * 3000 + ".com", "javascript:alert(1)"],
}

nasty = st.one_of(
    st.sampled_from(NASTY),
    st.text(max_size=40),
    st.integers().map(str),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.dates().map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.strftime("%Y-%m-%dT%H:%M")),
)


# --- reading forms out of a page -------------------------------------------------------------------------


@dataclass
class Field:
    name: str
    kind: str  # text, hidden, select, checkbox, radio, submit, textarea, ...
    values: list[str] = field(default_factory=list)  # what the page offers (options, checkbox values)
    chosen: list[str] = field(default_factory=list)  # what the page has filled in or selected
    multiple: bool = False


@dataclass
class Form:
    page: str
    method: str
    action: str
    fields: dict[str, Field] = field(default_factory=dict)
    also_posts_to: str = ""  # htmx: the same fields sent to another URL as they change

    @property
    def key(self) -> tuple[str, str, tuple[str, ...]]:
        """Forms that differ only in the id they act on (one per member, per follow-up) are walked once."""
        return (self.method, re.sub(r"/\d+/", "/N/", self.action), tuple(sorted(self.fields)))


class FormReader(HTMLParser):
    def __init__(self, page: str):
        super().__init__(convert_charrefs=True)
        self.page = page
        self.forms: list[Form] = []
        self._form: Form | None = None
        self._select: Field | None = None
        self._textarea: Field | None = None

    def _add(self, name: str, kind: str, value: str | None, *, chosen: bool, multiple: bool = False) -> Field:
        assert self._form is not None
        f = self._form.fields.setdefault(name, Field(name=name, kind=kind, multiple=multiple))
        if value is not None:
            f.values.append(value)
            if chosen:
                f.chosen.append(value)
        if kind == "checkbox" and len(f.values) > 1:
            f.multiple = True
        return f

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._form = Form(
                page=self.page,
                method=(a.get("method") or "get").lower(),
                action=urljoin(self.page, a.get("action") or self.page),
                also_posts_to=urljoin(self.page, a["hx-post"]) if a.get("hx-post") else "",
            )
            self.forms.append(self._form)
            return
        if self._form is None:
            return
        if tag == "option":
            if self._select is not None and "value" in a:  # Django always renders an option's value
                self._select.values.append(a["value"])
                if "selected" in a:
                    self._select.chosen.append(a["value"])
            return
        name = a.get("name")
        if not name:
            return
        if tag == "input":
            kind = (a.get("type") or "text").lower()
            if kind in ("checkbox", "radio"):
                self._add(name, kind, a.get("value", "on"), chosen="checked" in a)
            elif kind in ("submit", "button", "image", "reset"):
                self._add(name, "submit", a.get("value", ""), chosen=False)
            else:
                self._add(name, kind, a.get("value", ""), chosen=True)
        elif tag == "button" and (a.get("type") or "submit") == "submit":
            self._add(name, "submit", a.get("value", ""), chosen=False)
        elif tag == "select":
            self._select = self._add(name, "select", None, chosen=False, multiple="multiple" in a)
        elif tag == "textarea":
            self._textarea = self._add(name, "textarea", None, chosen=False)
            self._textarea.chosen.append("")

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._textarea.chosen[-1] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def forms_on(client: Client, page: str) -> list[Form]:
    response = client.get(page)
    assert response.status_code == 200, (page, response.status_code)
    reader = FormReader(page)
    reader.feed(response.content.decode())
    return [f for f in reader.forms if not f.action.endswith(SKIP_ACTIONS)]


# --- values for a form -----------------------------------------------------------------------------------


def page_value(f: Field) -> list[str]:
    """What a browser sends for the field when the person touches nothing."""
    if f.kind == "submit":
        return f.values[:1]
    if f.kind == "checkbox":
        return list(f.chosen)
    if f.kind == "radio":
        return f.chosen[:1] or f.values[:1]
    if f.kind == "select":
        if f.multiple:
            return list(f.chosen)
        return f.chosen[:1] or f.values[:1]
    return f.chosen[-1:] or [""]


def hostile(f: Field) -> st.SearchStrategy[list[str]]:
    """Values for one field: what the page offers, anything at all, or nothing."""
    offered = [v for v in f.values if v]
    one = st.one_of(st.sampled_from(offered), nasty) if offered else nasty
    if f.multiple:
        return st.lists(one, max_size=4)
    return st.one_of(one.map(lambda v: [v]), st.just([]))


def send(client: Client, form: Form, data: dict[str, list[str]], url: str):
    data = {k: v for k, v in data.items() if v}
    if form.method == "get":
        query = urlencode([(k, x) for k, vs in data.items() for x in vs])
        return client.get(f"{form.action}?{query}" if query else form.action)
    # The token of the moment: signing in (which some examples do) rotates it, as it would in a browser.
    data["csrfmiddlewaretoken"] = [client.cookies[django_settings.CSRF_COOKIE_NAME].value]
    return client.post(url, data)


def walk(
    client: Client, form: Form, known: dict[str, str], *, also: bool = True, typed: int = TYPED_EXAMPLES
) -> int:
    """Send the form as the page has it, then each field in turn made hostile while the others keep their
    good values (so the hostile one gets past the others' checks to where it is used): first the extremes
    of its input type, then hypothesis-generated values. Returns the number of requests."""
    valid = {name: [known[name]] if name in known else page_value(f) for name, f in form.fields.items()}
    sent = 0

    def check(data: dict[str, list[str]]) -> None:
        nonlocal sent
        for url in filter(None, (form.action, form.also_posts_to if also else "")):
            with transaction.atomic():
                response = send(client, form, data, url)
                transaction.set_rollback(True)
            sent += 1
            STATUSES[response.status_code] += 1
            assert response.status_code < 500, (form.page, url, data, response.status_code)

    def walk_field(name: str, f: Field) -> None:
        for value in BY_TYPE.get(f.kind, ()):
            check({**valid, name: [value]})

        @settings(
            max_examples=CHOSEN_EXAMPLES if f.kind in CHOSEN_KINDS else typed,
            deadline=None,
            database=None,  # no example database in the repository; each run explores afresh
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        )
        @given(value=hostile(f))
        def hostile_value(value: list[str]) -> None:
            check({**valid, name: value})

        hostile_value()

    check(valid)
    for name, f in form.fields.items():
        if name != "csrfmiddlewaretoken":
            walk_field(name, f)
    return sent


# --- the personas and what they see ----------------------------------------------------------------------


@pytest.fixture
def world(buying_lender, owner, officer):
    """The owner's lender with one of everything a form acts on: a lead with a follow-up, a subscription, an
    officer in the rotation, a pending invitation, an API key and a webhook endpoint with a message."""
    make_subscription(buying_lender, states=["TX"], price="40.00")
    delivery = sell(buying_lender, first_name="Maria")
    FollowUp.objects.create(delivery=delivery, user=owner, due_at=timezone.now() - timedelta(hours=1))
    AssignmentRule.objects.create(
        lender=buying_lender, membership=Membership.objects.get(user=officer), states=[], purposes=[]
    )
    MemberFactory(lender=buying_lender, role="manager", username="manager")
    Invitation.objects.create(
        lender=buying_lender,
        email="new.officer@example.com",
        token_hash=token_hash(INVITATION_TOKEN),
        expires_at=timezone.now() + timedelta(hours=72),
        invited_by=owner,
    )
    api_key_create(name="CRM", scope="read", lender=buying_lender, user=owner)
    endpoint = WebhookEndpoint.objects.create(
        lender=buying_lender,
        url="https://crm.example/hook",
        secret=webhook_secret_new(),
        events=["delivery.created"],
    )
    WebhookMessage.objects.create(
        endpoint=endpoint, event_id="evt_walker", event_type="delivery.created", payload={}, status="failed"
    )
    return {"delivery": delivery, "subscription": buying_lender.subscriptions.get(), "endpoint": endpoint}


def owner_pages(world) -> list[str]:
    d, sub, endpoint = world["delivery"], world["subscription"], world["endpoint"]
    names = [
        ("inbox",),
        ("delivery_detail", d.pk),
        ("team",),
        ("assignment_rules",),
        ("subscriptions",),
        ("subscription_create",),
        ("subscription_edit", sub.pk),
        ("billing",),
        ("returns",),
        ("return_request", d.pk),
        ("analytics",),
        ("api_keys",),
        ("webhooks",),
        ("webhook_detail", endpoint.pk),
    ]
    return [reverse(f"portal:{name}", args=args) for name, *args in names]


# What a person would type where the page leaves a field empty, so that examples reach past "required".
KNOWN_GOOD = {
    **FORM_DATA,
    "name": "Walker subscription",
    "price": "45.00",
    "due_at": "2030-01-02T10:00",
    "start": "2026-01-01",
    "end": "2026-01-31",
    "revenue": "3000",
    "url": "https://crm.example/other",
    "low_balance_threshold": "100.00",
    "new_password1": "a-long-walker-password-42",
    "new_password2": "a-long-walker-password-42",
    "first_name": "Walker",
    "last_name": "Tester",
    "username": "owner",
    "password": "pass-12345",
}


def test_every_portal_and_public_form_answers_bad_input_without_a_5xx(world, owner):
    """Issue 11.9: no value typed into any form of the portal or the public site is a 500."""
    STATUSES.clear()
    lender_client = Client(enforce_csrf_checks=True)
    lender_client.force_login(owner)
    visitor = Client(enforce_csrf_checks=True)
    public_pages = [
        "/",
        reverse("portal:login"),
        reverse("portal:invitation_accept", args=[INVITATION_TOKEN]),
    ]

    seen: set = set()
    htmx_seen: set[str] = set()
    walked = []
    requests = 0
    for client, pages in ((visitor, public_pages), (lender_client, owner_pages(world))):
        for page in pages:
            for form in forms_on(client, page):
                if form.key in seen:
                    continue
                seen.add(form.key)
                # A second form posting to the same htmx URL (a subscription's edit page) adds nothing there.
                also = form.also_posts_to not in htmx_seen
                htmx_seen.add(form.also_posts_to)
                requests += walk(client, form, KNOWN_GOOD, also=also)
                walked.append(f"{form.method.upper()} {form.action}")
    print(f"walked {len(walked)} forms with {requests} requests: {sorted(STATUSES.items())}")
    # The walk found the forms it should: a guard against a reader that silently finds none.
    for expected in (
        "POST /",
        "POST /portal/login/",
        f"POST /portal/join/{INVITATION_TOKEN}/",
        "GET /portal/",
        f"POST /portal/leads/{world['delivery'].pk}/followups/",
        f"POST /portal/leads/{world['delivery'].pk}/status/",
        "POST /portal/subscriptions/new/",
        "POST /portal/team/",
        "POST /portal/team/assignment/",
        "GET /portal/analytics/",
        "POST /portal/billing/",
        "POST /portal/integrations/webhooks/",
    ):
        assert expected in walked, (expected, walked)


def admin_pages() -> list[str]:
    """Each registered model's list (its search, filters and actions) and the change page of one row: the
    change form starts from a valid row, so a hostile field gets past the others (an add page's empty form
    would mostly answer "required")."""
    from django.apps import apps
    from django.contrib import admin

    pages = []
    for model in apps.get_models():
        if not admin.site.is_registered(model):
            continue
        base = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        pages.append(reverse(f"{base}_changelist"))
        row = model._default_manager.order_by("pk").first()
        if row is not None:
            pages.append(reverse(f"{base}_change", args=[row.pk]))
    return pages


def test_every_admin_form_answers_bad_input_without_a_5xx(world, staff):
    """Issue 11.9 (admin where it matters): the staff's forms take the same hostile values without a 5xx."""
    STATUSES.clear()
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    seen: set = set()
    requests = 0
    for page in admin_pages():
        response = client.get(page)
        if response.status_code != 200:  # an add page of a read-only model: 403
            assert response.status_code < 500, page
            continue
        reader = FormReader(page)
        reader.feed(response.content.decode())
        for form in reader.forms:
            if form.key in seen or form.action.endswith(("/logout/",)):
                continue
            seen.add(form.key)
            requests += walk(client, form, {}, typed=1)  # staff forms are many and wide: one example each
    print(f"walked the admin with {requests} requests: {sorted(STATUSES.items())}")
