"""Portal pages for API keys and webhooks: owners and managers only, scoped to their lender, shown once."""

import pytest
from django.urls import reverse

from integrations.models import ApiKey, WebhookEndpoint, WebhookMessage
from integrations.services import api_key_create, webhook_secret_new
from integrations.tests.conftest import Api

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


def test_an_owner_makes_a_key_that_is_shown_once_and_works(owner_client, buying_lender, delivery):
    response = owner_client.post(
        reverse("portal:api_keys"), {"name": "CRM sync", "scope": "write"}, follow=True
    )

    key = response.context["shown"]["key"]
    assert key in response.content.decode()
    stored = ApiKey.objects.get(lender=buying_lender)
    assert stored.key_sha256 == ApiKey.hash(key) and stored.scope == "write"
    assert Api(key).get("/api/v1/deliveries/").status_code == 200
    again = owner_client.get(reverse("portal:api_keys")).content.decode()
    assert key not in again and stored.prefix in again


def test_revoking_a_key(owner_client, buying_lender):
    new = api_key_create(lender=buying_lender, name="old", scope="read")
    owner_client.post(reverse("portal:api_key_revoke", args=[new.api_key.pk]))
    assert Api(new.key).get("/api/v1/account/").status_code == 401


def test_officers_cannot_manage_integrations(client, officer):
    client.force_login(officer)
    assert client.get(reverse("portal:api_keys")).status_code == 403
    assert client.get(reverse("portal:webhooks")).status_code == 403


def test_another_lenders_keys_and_endpoints_are_404(owner_client, rival_lender):
    rival_key = api_key_create(lender=rival_lender, name="x", scope="read").api_key
    rival_ep = WebhookEndpoint.objects.create(
        lender=rival_lender,
        url="https://r.example/h",
        secret=webhook_secret_new(),
        events=["delivery.created"],
    )
    assert owner_client.post(reverse("portal:api_key_revoke", args=[rival_key.pk])).status_code == 404
    for name in ("portal:webhook_detail", "portal:webhook_rotate", "portal:webhook_toggle"):
        method = owner_client.get if name == "portal:webhook_detail" else owner_client.post
        assert method(reverse(name, args=[rival_ep.pk])).status_code == 404
    rival_key.refresh_from_db()
    assert rival_key.revoked_at is None


def test_adding_an_endpoint_shows_its_secret_once(owner_client, buying_lender, settings):
    settings.WEBHOOK_ALLOW_LOOPBACK = True
    response = owner_client.post(
        reverse("portal:webhooks"),
        {"url": "http://127.0.0.1:9/hook", "events": ["delivery.created", "delivery.updated"]},
        follow=True,
    )
    endpoint = WebhookEndpoint.objects.get(lender=buying_lender)
    assert response.context["shown"]["secret"] == endpoint.secret
    assert endpoint.events == ["delivery.created", "delivery.updated"]
    assert (
        endpoint.secret
        not in owner_client.get(reverse("portal:webhook_detail", args=[endpoint.pk])).content.decode()
    )

    old = endpoint.secret
    response = owner_client.post(reverse("portal:webhook_rotate", args=[endpoint.pk]), follow=True)
    endpoint.refresh_from_db()
    assert endpoint.secret != old and response.context["shown"]["secret"] == endpoint.secret


def test_private_urls_are_refused(owner_client, buying_lender):
    for url in ("http://127.0.0.1/hook", "https://10.0.0.5/hook", "https://169.254.169.254/latest"):
        response = owner_client.post(reverse("portal:webhooks"), {"url": url, "events": ["delivery.created"]})
        assert response.status_code == 400, url
    assert not WebhookEndpoint.objects.exists()


def test_the_log_shows_attempts_and_can_resend(
    owner_client, buying_lender, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr(
        "integrations.tasks.webhook_endpoint_send_due.apply_async", lambda args, **kw: sent.append(args)
    )
    endpoint = WebhookEndpoint.objects.create(
        lender=buying_lender,
        url="https://crm.example/h",
        secret=webhook_secret_new(),
        events=["delivery.created"],
    )
    message = WebhookMessage.objects.create(
        endpoint=endpoint,
        event_id="msg_1",
        event_type="delivery.created",
        payload={},
        status="failed",
        attempt_count=10,
    )
    message.attempts.create(status_code=500, latency_ms=12, response_excerpt="upstream down")

    page = owner_client.get(reverse("portal:webhook_detail", args=[endpoint.pk])).content.decode()
    assert "msg_1" in page and "HTTP 500" in page and "upstream down" in page

    with django_capture_on_commit_callbacks(execute=True):
        owner_client.post(reverse("portal:webhook_resend", args=[endpoint.pk, message.pk]))
    message.refresh_from_db()
    assert message.status == "pending" and message.attempt_count == 0 and sent == [(endpoint.pk,)]
