"""Every lender-scoped URL, found from the URL conf, is closed to other lenders and to anonymous visitors.

The walk reads django.urls.get_resolver(), so a URL added later is covered without touching this file; a URL
whose parameter this module has no object for fails the walk by name, so none escapes it silently.
"""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from integrations.api.common import not_found
from integrations.exports import inbox_export_build, inbox_export_request, inbox_export_token
from integrations.models import ApiKey, InboxExport, StepRun, WebhookEndpoint, WebhookMessage
from integrations.outreach import services as outreach
from integrations.services import api_key_create, webhook_secret_new
from lenders import team
from lenders.models import Invitation, Membership
from marketplace.models import ReturnRequest
from marketplace.selectors import InboxFilters
from marketplace.services import delivery_reassign, followup_create, lead_distribute

from .factories import ConsumerFactory, MemberFactory, QualifiedLeadFactory, make_subscription

pytestmark = pytest.mark.django_db

# Public pages and the partner intake: open to visitors (or to partner keys), so not lender-scoped.
PUBLIC = {"portal:login", "portal:logout", "portal:invitation_accept", "api:lead_create", "api:lead_detail"}

# The buying lender's consumer: distinctive values, so finding any of them in a page is a leak, not chance.
CONSUMER = {
    "first_name": "Zebulon",
    "last_name": "Quixotefield",
    "email": "zebulon.quixotefield@buyer-only.example",
    "phone": "5125550199",
}
SECRETS = [
    CONSUMER["first_name"],
    CONSUMER["last_name"],
    CONSUMER["email"],
    CONSUMER["phone"],
    "512-555-0199",
    "(512) 555-0199",
]


@dataclass(frozen=True)
class LenderUrl:
    name: str  # namespaced, e.g. "portal:delivery_detail"
    params: tuple[str, ...]
    api: bool


def _walk(patterns, namespace: str | None = None, prefix: str = "", params: tuple[str, ...] = ()):
    for p in patterns:
        route = prefix + str(p.pattern)
        names = tuple(p.pattern.converters) if hasattr(p.pattern, "converters") else ()
        names += tuple(p.pattern.regex.groupindex)  # re_path groups, if any
        names = tuple(dict.fromkeys(names))
        if isinstance(p, URLResolver):
            yield from _walk(p.url_patterns, p.namespace or namespace, route, params + names)
        elif isinstance(p, URLPattern):
            yield namespace, p, route, params + names


def lender_urls() -> list[LenderUrl]:
    """Portal pages and /api/v1/ endpoints, minus the public ones and the API's catch-all 404."""
    found = []
    for namespace, pattern, route, params in _walk(get_resolver().url_patterns):
        if namespace not in ("portal", "api") or pattern.callback is not_found:
            continue
        if namespace == "api" and not route.replace("^", "").startswith("api/v1/"):
            continue
        assert pattern.name, f"a {namespace} URL without a name cannot be walked: {route}"
        name = f"{namespace}:{pattern.name}"
        if name not in PUBLIC:
            found.append(LenderUrl(name=name, params=params, api=namespace == "api"))
    return found


URLS = lender_urls()


@pytest.fixture
def world(buying_lender, owner, officer, rival_lender, rival_owner):
    """One object of the buying lender for each kind of id a lender URL takes."""
    owner_membership = Membership.objects.get(user=owner)
    other_officer = MemberFactory(lender=buying_lender, role="officer", username="officer2")
    subscription = make_subscription(buying_lender, exclusive=True, price="90.00")
    endpoint = WebhookEndpoint.objects.create(
        lender=buying_lender,
        url="https://crm.example/hook",
        secret=webhook_secret_new(),
        events=["delivery.created"],
    )
    lead = QualifiedLeadFactory(consumer=ConsumerFactory(**CONSUMER))
    delivery = lead_distribute(lead_id=lead.pk)[0]
    # Handed to a colleague: the `officer` persona must not reach it.
    delivery_reassign(delivery=delivery, membership=other_officer)
    message = WebhookMessage.objects.create(
        endpoint=endpoint,
        event_id="msg_isolation_1",
        event_type="delivery.created",
        payload={"type": "delivery.created", "data": {"id": delivery.pk}},
        status="succeeded",
    )
    followup = followup_create(delivery=delivery, user=owner, due_at=timezone.now() + timedelta(days=1))
    invitation = Invitation.objects.create(
        lender=buying_lender,
        email="newhire@buyer-only.example",
        role="officer",
        expires_at=timezone.now() + timedelta(days=3),
        invited_by=owner,
    )
    rule = team.assignment_rule_save(
        actor=owner_membership, member=other_officer, states=["TX"], purposes=["purchase"]
    )
    key = api_key_create(lender=buying_lender, name="CRM", scope=ApiKey.Scope.WRITE)
    # Its outreach: the lender's default sequence, and the call task on the lead (My day).
    outreach.deliveries_enrol(delivery_ids=[delivery.pk])
    call_task = StepRun.objects.filter(enrolment__delivery=delivery, action="call").order_by("pk").first()
    # Straight to the row: the service's monthly return cap refuses a return on a lender's only delivery.
    return_req = ReturnRequest.objects.create(
        delivery=delivery, lender=buying_lender, reason="bad_contact", requested_by=owner
    )
    ids: dict[str, Any] = {
        "delivery_id": delivery.pk,
        "subscription_id": subscription.pk,
        "followup_id": followup.pk,
        "member_id": other_officer.pk,
        "invitation_id": invitation.pk,
        "rule_id": rule.pk,
        "key_id": key.api_key.pk,
        "endpoint_id": endpoint.pk,
        "message_id": message.pk,
        "return_id": return_req.pk,
        "run_id": call_task.pk,
        "sequence_id": call_task.enrolment.sequence_id,
    }
    # A large inbox export of the owner's, written by its task: its link is the owner's alone.
    export = inbox_export_request(membership=owner_membership, filters=InboxFilters())
    inbox_export_build(export_id=export.pk)
    ids["token"] = inbox_export_token(InboxExport.objects.get(pk=export.pk))
    rival_key = api_key_create(lender=rival_lender, name="CRM", scope=ApiKey.Scope.WRITE).key
    return {"ids": ids, "rival_key": rival_key, "owner": owner, "officer": officer, "rival": rival_owner}


def build(url: LenderUrl, ids: dict[str, Any]) -> str:
    missing = [p for p in url.params if p not in ids]
    if missing:
        pytest.fail(
            f"{url.name} takes {', '.join(missing)}, which the isolation walk has no object for: add one "
            "of the buying lender's objects to the `world` fixture in marketplace/tests/test_isolation.py"
        )
    return reverse(url.name, kwargs={p: ids[p] for p in url.params})


def body_of(response) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode(errors="replace")
    return response.content.decode(errors="replace")


def call(client: Client, method: str, path: str, key: str | None = None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
    if method == "GET":
        return client.get(path, **headers)
    return client.post(path, **headers)  # an empty body


def method_unsupported(url: LenderUrl, method: str, path: str, world) -> bool:
    """True when the view does not take `method` at all: its own lender gets 405 too, so a 405 says
    nothing about whose object the id is."""
    client = Client()
    key = None
    if url.api:
        key = api_key_create(
            lender=Membership.objects.get(user=world["owner"]).lender, name="probe", scope=ApiKey.Scope.WRITE
        ).key
    else:
        client.force_login(world["owner"])
    return call(client, method, path, key).status_code == 405


def test_the_walk_finds_the_lender_urls():
    portal = sorted(u.name for u in URLS if not u.api)
    api = sorted(u.name for u in URLS if u.api)
    print(f"\nisolation walk: {len(portal)} portal URLs, {len(api)} API URLs")
    for name in portal + api:
        print("  ", name)
    assert len(portal) >= 20, portal
    assert len(api) >= 5, api
    assert not {u.name for u in URLS} & PUBLIC


@pytest.mark.parametrize("url", URLS, ids=[u.name for u in URLS])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_another_lender_gets_404_or_sees_nothing(url, method, world):
    path = build(url, world["ids"])
    client = Client()
    key = world["rival_key"] if url.api else None
    if not url.api:
        client.force_login(world["rival"])
    response = call(client, method, path, key)
    if response.status_code == 405:
        assert method_unsupported(url, method, path, world), f"{method} {path}: 405 only for the rival"
        return
    if url.params:
        assert response.status_code == 404, f"{method} {path} by another lender: {response.status_code}"
        return
    # A list page: the rival's own (empty) view, or a 403 for a page its role may not use.
    assert response.status_code in (200, 204, 302, 303, 400, 403), f"{method} {path}: {response.status_code}"
    text = body_of(response)
    leaked = [s for s in SECRETS if s in text]
    assert not leaked, f"{method} {path} shows the buying lender's consumer to another lender: {leaked}"


@pytest.mark.parametrize("url", URLS, ids=[u.name for u in URLS])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_an_anonymous_visitor_is_sent_to_login_or_gets_401(url, method, world):
    path = build(url, world["ids"])
    response = call(Client(), method, path)
    if response.status_code == 405 and method_unsupported(url, method, path, world):
        return
    if url.api:
        assert response.status_code == 401, f"{method} {path} without a key: {response.status_code}"
        assert "WWW-Authenticate" in response
    else:
        assert response.status_code == 302, f"{method} {path} anonymous: {response.status_code}"
        login = reverse("portal:login")
        assert response["Location"].startswith(f"{login}?next="), response["Location"]


DELIVERY_URLS = [u for u in URLS if "delivery_id" in u.params and not u.api]


def test_delivery_urls_are_found():
    assert len(DELIVERY_URLS) >= 5, [u.name for u in DELIVERY_URLS]


@pytest.mark.parametrize("url", DELIVERY_URLS, ids=[u.name for u in DELIVERY_URLS])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_an_officer_gets_404_on_a_colleagues_lead(url, method, world):
    path = build(url, world["ids"])
    client = Client()
    client.force_login(world["officer"])
    response = call(client, method, path)
    if response.status_code == 405 and method_unsupported(url, method, path, world):
        return
    assert response.status_code == 404, f"{method} {path} by another officer: {response.status_code}"
