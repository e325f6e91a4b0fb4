"""Who the client is: the one client-IP function behind the form, consent, the API, the login lockout and
the contact-access log, with and without a trusted proxy in front (issue 11.3)."""

import pytest
from django.test import Client, RequestFactory, override_settings

from compliance.models import ContactAccess
from core.clientip import client_ip
from integrations.models import ApiKey
from integrations.services import api_key_create
from leads.models import ConsentRecord
from marketplace.services import lead_distribute

from .factories import FORM_DATA, QualifiedLeadFactory, make_subscription

PROXY = "10.0.0.2"  # our load balancer, in the network the tests trust
BEHIND_PROXY = override_settings(TRUSTED_PROXIES=["10.0.0.0/8"])


def request(remote_addr: str, forwarded: str | None = None):
    meta = {"REMOTE_ADDR": remote_addr}
    if forwarded is not None:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **meta)


@pytest.mark.parametrize(
    "remote_addr, forwarded, expected",
    [
        ("203.0.113.9", None, "203.0.113.9"),
        ("203.0.113.9", "198.51.100.1", "203.0.113.9"),  # anyone may send the header: ignored
        (PROXY, "198.51.100.1", PROXY),  # even from our proxy's address when no proxy is configured
        ("::ffff:203.0.113.9", None, "203.0.113.9"),
        ("not-an-ip", None, None),
        ("", None, None),
    ],
)
def test_without_a_trusted_proxy_forwarded_headers_are_ignored(remote_addr, forwarded, expected):
    """Issue 11.3: with no TRUSTED_PROXIES (the default) the peer is the client, whatever the header says."""
    assert client_ip(request(remote_addr, forwarded)) == expected


@BEHIND_PROXY
@pytest.mark.parametrize(
    "remote_addr, forwarded, expected",
    [
        (PROXY, "203.0.113.9", "203.0.113.9"),
        # The client sent its own X-Forwarded-For; our proxy appended the real peer: the right-most
        # address that is not ours is the client, the forged ones to its left are not believed.
        (PROXY, "1.2.3.4, 203.0.113.9", "203.0.113.9"),
        (PROXY, "1.2.3.4, 203.0.113.9, 10.0.0.7", "203.0.113.9"),  # two proxies of ours
        (PROXY, " 203.0.113.9:51234 ", "203.0.113.9"),
        (PROXY, "[2001:db8::9]:443", "2001:db8::9"),
        (PROXY, None, PROXY),  # the proxy's own request (a health check)
        (PROXY, "", PROXY),
        (PROXY, "10.0.0.9", "10.0.0.9"),  # only our own addresses: the farthest one
        (PROXY, "203.0.113.9, garbage", PROXY),  # our proxy sent no address: believe nothing past it
        # A peer that is not our proxy cannot choose its address by sending the header.
        ("198.51.100.66", "203.0.113.9", "198.51.100.66"),
    ],
)
def test_behind_a_trusted_proxy_the_right_most_untrusted_address_is_the_client(
    remote_addr, forwarded, expected
):
    """Issue 11.3: behind the proxy the client is the right-most X-Forwarded-For address that is not one of
    our proxies; a spoofed header from an untrusted peer is ignored."""
    assert client_ip(request(remote_addr, forwarded)) == expected


def test_a_trusted_proxy_setting_that_is_no_address_stops_the_start():
    from .test_security import PRODUCTION_ENV, manage

    result = manage("check", env_overrides={**PRODUCTION_ENV, "TRUSTED_PROXIES": "10.0.0.0/8,lb.internal"})
    assert result.returncode != 0 and "TRUSTED_PROXIES: 'lb.internal'" in result.stderr


# --- the public form and its consent record ------------------------------------------------------------


def submit(client: Client, n: int, **meta):
    return client.post("/", {**FORM_DATA, "email": f"c{n}@example.com"}, **meta)


@BEHIND_PROXY
@override_settings(LEAD_FORM_RATE_LIMIT=2, LEAD_FORM_RATE_WINDOW=600)
def test_behind_the_proxy_each_consumer_has_a_rate_limit_and_consent_of_their_own(client, db):
    """Issue 11.3: behind the proxy every consumer shared the proxy's bucket (20 submissions per 10 minutes
    for the country) and consent recorded the proxy's address. Now each client counts for itself."""
    first = "203.0.113.9"
    statuses = [
        submit(client, i, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=first).status_code for i in range(3)
    ]
    assert statuses == [303, 303, 429]
    # Another consumer, through the same proxy, is not held back by the first one's limit.
    other = submit(client, 9, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="1.2.3.4, 198.51.100.7")
    assert other.status_code == 303
    assert sorted(ConsentRecord.objects.values_list("ip_address", flat=True)) == [
        "198.51.100.7",
        first,
        first,
    ]


@override_settings(LEAD_FORM_RATE_LIMIT=2, LEAD_FORM_RATE_WINDOW=600)
def test_without_a_proxy_a_forged_header_neither_escapes_the_limit_nor_enters_the_consent(client, db):
    """Issue 11.3: with no trusted proxy, X-Forwarded-For stays ignored: a flood that rotates the header
    is still one client, and consent records the real peer."""
    statuses = [
        submit(client, i, REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR=f"198.51.100.{i}").status_code
        for i in range(3)
    ]
    assert statuses == [303, 303, 429]
    assert set(ConsentRecord.objects.values_list("ip_address", flat=True)) == {"203.0.113.9"}


# --- the login lockout (django-axes) -------------------------------------------------------------------


def fail_logins(client: Client, times: int, **meta) -> None:
    for _ in range(times):
        client.post("/portal/login/", {"username": "owner", "password": "wrong-password"}, **meta)


def log_in(client: Client, **meta) -> int:
    return client.post("/portal/login/", {"username": "owner", "password": "pass-12345"}, **meta).status_code


@BEHIND_PROXY
def test_behind_the_proxy_a_lockout_holds_the_attacker_not_everyone(client, owner):
    """Issue 11.3: axes keyed lockouts by the proxy's address, so one attacker's failures locked the user
    out from everywhere. Now it is the attacker's own address that is locked."""
    fail_logins(client, 5, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="198.51.100.66")
    assert log_in(client, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="198.51.100.66") == 429
    assert log_in(Client(), REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="203.0.113.9") == 302


def test_without_a_proxy_a_forged_header_does_not_escape_the_lockout(client, owner):
    """Issue 11.3: with no trusted proxy, rotating X-Forwarded-For does not give an attacker new tries."""
    for i in range(5):
        fail_logins(client, 1, REMOTE_ADDR="198.51.100.66", HTTP_X_FORWARDED_FOR=f"203.0.113.{i}")
    assert log_in(client, REMOTE_ADDR="198.51.100.66", HTTP_X_FORWARDED_FOR="203.0.113.200") == 429


# --- the contact-access log: portal, export and API ---------------------------------------------------


@pytest.fixture
def delivery(buying_lender):
    make_subscription(buying_lender, price="40.00")
    return lead_distribute(lead_id=QualifiedLeadFactory().pk)[0]


@BEHIND_PROXY
def test_behind_the_proxy_the_access_log_records_the_viewer_not_the_proxy(client, owner, delivery):
    """Issue 11.3: who read a consumer's contact details is recorded with the reader's address, on the
    portal page, in the CSV export and through the lender API."""
    client.force_login(owner)
    meta = {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": "1.2.3.4, 203.0.113.9"}
    assert client.get(f"/portal/leads/{delivery.pk}/", **meta).status_code == 200
    assert client.get("/portal/inbox/export.csv", **meta).status_code == 200
    key = api_key_create(lender=delivery.lender, name="CRM", scope=ApiKey.Scope.READ).key
    api = Client().get(
        f"/api/v1/deliveries/{delivery.pk}/",
        HTTP_AUTHORIZATION=f"Bearer {key}",
        REMOTE_ADDR=PROXY,
        HTTP_X_FORWARDED_FOR="198.51.100.7",
    )
    assert api.status_code == 200
    rows = dict(ContactAccess.objects.values_list("channel", "ip_address"))
    assert rows == {"portal": "203.0.113.9", "export": "203.0.113.9", "api": "198.51.100.7"}


def test_without_a_proxy_the_access_log_records_the_peer(client, owner, delivery):
    """Issue 11.3: with no trusted proxy the access log keeps the socket's peer, whatever the header says."""
    client.force_login(owner)
    client.get(f"/portal/leads/{delivery.pk}/", REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="1.2.3.4")
    assert ContactAccess.objects.get().ip_address == "203.0.113.9"
