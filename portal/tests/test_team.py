"""The team: invitations with single-use expiring links, roles, deactivation, and who may manage whom."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from lenders.models import AssignmentRule, Invitation, Membership
from marketplace.tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager(buying_lender):
    return MemberFactory(lender=buying_lender, role="manager", username="manager").user


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks):
    """Run the e-mail tasks queued on commit (tests run inside a transaction that never commits)."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def invite(client, email="new.officer@example.com", role="officer", *, on_commit=None):
    if on_commit is None:
        return client.post(reverse("portal:team"), {"email": email, "role": role})
    with on_commit():
        return client.post(reverse("portal:team"), {"email": email, "role": role})


def link_from_mail() -> str:
    message = mail.outbox[-1]
    match = re.search(r"http://[^\s]+/portal/join/([^/\s]+)/", message.body)
    assert match, message.body
    return reverse("portal:invitation_accept", args=[match.group(1)])


def test_owner_invites_and_the_member_joins_once(client, owner, buying_lender, on_commit):
    client.force_login(owner)
    response = invite(client, on_commit=on_commit)
    assert response.status_code == 302
    inv = Invitation.objects.get()
    assert inv.sent_at and len(inv.token_hash) == 64
    assert inv.expires_at - timezone.now() > timedelta(hours=71)
    message = mail.outbox[0]
    assert message.to == ["new.officer@example.com"] and "Lone Star Lending" in message.subject
    assert message.alternatives[0][1] == "text/html"
    link = link_from_mail()
    assert link.split("/")[-2] not in inv.token_hash  # only the hash is stored

    client.post(reverse("portal:logout"))
    page = client.get(link)
    assert page.status_code == 200 and "Join Lone Star Lending" in page.content.decode()
    # The token in the URL never reaches another site; not no-referrer, which breaks the form (issue 11.14).
    assert page["Referrer-Policy"] == "same-origin"
    weak = client.post(
        link,
        {"first_name": "Nia", "last_name": "Ortiz", "new_password1": "password", "new_password2": "password"},
    )
    assert weak.status_code == 400 and "too common" in weak.content.decode()

    good = {
        "first_name": "Nia",
        "last_name": "Ortiz",
        "new_password1": "Copper-kettle-93",
        "new_password2": "Copper-kettle-93",
    }
    joined = client.post(link, good)
    assert joined.status_code == 302 and joined.url == reverse("portal:inbox")
    assert client.get(reverse("portal:inbox")).status_code == 200  # signed in
    member = Membership.objects.get(user__username="new.officer@example.com")
    assert member.lender == buying_lender and member.role == "officer" and member.is_active

    client.post(reverse("portal:logout"))
    again = client.get(link)
    assert again.status_code == 404 and "no longer works" in again.content.decode()
    assert client.post(link, good).status_code == 404


def test_an_expired_link_does_not_work(client, owner, on_commit):
    client.force_login(owner)
    invite(client, on_commit=on_commit)
    link = link_from_mail()
    Invitation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    client.post(reverse("portal:logout"))
    assert client.get(link).status_code == 404
    assert client.get(reverse("portal:invitation_accept", args=["not-a-token"])).status_code == 404


def test_resend_replaces_the_link_and_revoke_kills_it(client, owner, on_commit):
    client.force_login(owner)
    invite(client, on_commit=on_commit)
    first = link_from_mail()
    inv = Invitation.objects.get()
    with on_commit():
        client.post(reverse("portal:invitation_update", args=[inv.pk]), {"action": "resend"})
    second = link_from_mail()
    assert first != second
    assert client.get(first).status_code == 404
    client.post(reverse("portal:invitation_update", args=[inv.pk]), {"action": "revoke"})
    assert client.get(second).status_code == 404


def test_a_manager_cannot_invite_or_promote_owners(client, manager, owner):
    client.force_login(manager)
    page = client.get(reverse("portal:team")).content.decode()
    assert '<option value="owner"' not in page
    response = invite(client, role="owner")
    assert response.status_code == 400 and not Invitation.objects.exists()
    officer = MemberFactory(lender=owner.membership.lender, role="officer", username="o2")
    client.post(reverse("portal:member_update", args=[officer.pk]), {"action": "role", "role": "owner"})
    officer.refresh_from_db()
    assert officer.role == "officer"
    # Nor change or deactivate an owner.
    client.post(reverse("portal:member_update", args=[owner.membership.pk]), {"action": "deactivate"})
    owner.membership.refresh_from_db()
    assert owner.membership.is_active


def test_deactivated_members_lose_the_portal_and_the_rotation(client, owner, officer, buying_lender):
    client.force_login(owner)
    client.post(reverse("portal:member_update", args=[officer.membership.pk]), {"action": "deactivate"})
    officer.membership.refresh_from_db()
    assert not officer.membership.is_active
    client.force_login(officer)
    assert client.get(reverse("portal:inbox")).status_code == 403
    client.force_login(owner)
    client.post(reverse("portal:member_update", args=[officer.membership.pk]), {"action": "reactivate"})
    client.force_login(officer)
    assert client.get(reverse("portal:inbox")).status_code == 200


def test_nobody_deactivates_themselves(client, owner):
    client.force_login(owner)
    r = client.post(
        reverse("portal:member_update", args=[owner.membership.pk]), {"action": "deactivate"}, follow=True
    )
    assert "cannot change your own" in r.content.decode()
    owner.membership.refresh_from_db()
    assert owner.membership.is_active


def test_inviting_an_address_with_an_account_answers_as_for_any_address(
    client, owner, rival_lender, on_commit
):
    """Issue 11.13: inviting an address told any lender "this person already has a portal account", so a
    lender could find out who works for its rivals. The inviter now sees the same answer, message and
    pending invitation either way; only the address's owner is told, by e-mail, and gets no link."""
    MemberFactory(lender=rival_lender, role="officer", username="taken@example.com")
    client.force_login(owner)

    for email in ("taken@example.com", "nobody@example.com"):
        response = invite(client, email=email, on_commit=on_commit)
        assert (response.status_code, response["Location"]) == (302, reverse("portal:team"))
        page = client.get(response["Location"]).content.decode()
        assert f"Invitation sent to {email}. The link works once, for 72 hours." in page
        assert "already has" not in page
    pending = client.get(reverse("portal:team")).content.decode().split("Pending invitations")[1]
    assert "taken@example.com" in pending and "nobody@example.com" in pending

    to_account, to_new = mail.outbox
    assert to_account.to == ["taken@example.com"] and to_account.subject == to_new.subject
    assert "already has a Lead Market portal account" in to_account.body
    assert "/portal/join/" not in to_account.body + to_account.alternatives[0][0]
    assert "/portal/join/" in to_new.body
    assert Invitation.objects.get(email="taken@example.com").token_hash == ""


def test_owner_sets_assignment_rules(client, owner, officer):
    client.force_login(owner)
    r = client.post(
        reverse("portal:assignment_rules"),
        {
            "membership": officer.membership.pk,
            "states": "tx",
            "purposes": ["purchase"],
            "is_active": "on",
        },
    )
    assert r.status_code == 302
    rule = AssignmentRule.objects.get()
    assert rule.states == ["TX"] and rule.purposes == ["purchase"] and rule.is_active
    bad = client.post(reverse("portal:assignment_rule_update", args=[rule.pk]), {"states": "NY"}, follow=True)
    assert "not licensed in NY" in bad.content.decode()
    client.post(reverse("portal:assignment_rule_update", args=[rule.pk]), {"states": "CA, TX"})
    rule.refresh_from_db()
    assert rule.states == ["CA", "TX"] and rule.purposes == [] and not rule.is_active
    page = client.get(reverse("portal:assignment_rules")).content.decode()
    assert "The rotation" in page and officer.get_username() in page
    client.post(reverse("portal:assignment_rule_update", args=[rule.pk]), {"action": "delete"})
    assert not AssignmentRule.objects.exists()


def test_the_team_page_shows_each_member_and_what_the_viewer_may_change(client, owner, officer):
    """Each member's line: name, e-mail, role, "(you)" on the viewer's own, and role and deactivation forms
    on the others' only. (The template reads rows built by the view; a name it misses renders as nothing.)"""
    officer.first_name, officer.last_name, officer.email = "Olive", "Officer", "olive@example.com"
    officer.save()
    client.force_login(owner)
    client.post(reverse("portal:member_update", args=[officer.membership.pk]), {"action": "deactivate"})
    html = client.get(reverse("portal:team")).content.decode()
    lines = {
        m.group(1): m.group(0)
        for m in re.finditer(r'<li class="member[^"]*">.*?<strong>([^<]+)</strong>.*?</li>', html, re.S)
    }
    assert set(lines) == {"owner", "Olive Officer"}
    mine, theirs = lines["owner"], lines["Olive Officer"]
    assert "(you)" in mine and "Owner" in mine
    assert reverse("portal:member_update", args=[owner.membership.pk]) not in mine
    assert "(you)" not in theirs and "olive@example.com" in theirs and "Loan officer" in theirs
    assert "member--inactive" in theirs and "Deactivated" in theirs and "Reactivate" in theirs
    update = reverse("portal:member_update", args=[officer.membership.pk])
    assert theirs.count(f'action="{update}"') == 2
    assert reverse("portal:member_profile", args=[officer.membership.pk]) in theirs
    assert reverse("portal:profile") in mine  # the viewer edits their own on their own page
    assert f'id="id_m{officer.membership.pk}_role"' in theirs


def test_the_rotation_shows_each_rule_with_its_member_and_terms(client, owner, officer):
    officer.first_name, officer.last_name = "Olive", "Officer"
    officer.save()
    rule = AssignmentRule.objects.create(
        lender=owner.membership.lender, membership=officer.membership, states=["TX"], purposes=["refinance"]
    )
    client.force_login(owner)
    html = client.get(reverse("portal:assignment_rules")).content.decode()
    line = re.search(r'<li class="rule[^"]*">.*?</li>', html, re.S)
    assert line, html
    row = line.group(0)
    assert "<strong>Olive Officer</strong>" in row and "rule--off" not in row
    assert reverse("portal:assignment_rule_update", args=[rule.pk]) in row
    assert f'id="rule-{rule.pk}-states"' in row and 'value="TX"' in row
    assert 'value="refinance" checked' in row and 'value="purchase" checked' not in row
    assert 'name="is_active" value="1" checked' in row and "0 leads assigned" in row


# --- permissions: officers reach no team page; other lenders get 404 -----------------------------------

MANAGER_PAGES = [
    ("get", "portal:team", []),
    ("post", "portal:team", []),
    ("get", "portal:assignment_rules", []),
    ("post", "portal:assignment_rules", []),
]


@pytest.mark.parametrize("method,name,args", MANAGER_PAGES)
def test_officers_cannot_reach_team_pages(client, officer, method, name, args):
    client.force_login(officer)
    response = getattr(client, method)(
        reverse(name, args=args), {"email": "x@example.com", "role": "officer"}
    )
    assert response.status_code == 403
    assert not Invitation.objects.exists()


def test_officers_cannot_change_members_rules_or_invitations(client, owner, officer, buying_lender):
    other = MemberFactory(lender=buying_lender, role="officer", username="o3")
    rule = AssignmentRule.objects.create(lender=buying_lender, membership=other)
    inv = Invitation.objects.create(lender=buying_lender, email="a@example.com", expires_at=timezone.now())
    client.force_login(officer)
    assert (
        client.post(reverse("portal:member_update", args=[other.pk]), {"action": "deactivate"}).status_code
        == 403
    )
    assert (
        client.post(
            reverse("portal:assignment_rule_update", args=[rule.pk]), {"action": "delete"}
        ).status_code
        == 403
    )
    assert (
        client.post(reverse("portal:invitation_update", args=[inv.pk]), {"action": "revoke"}).status_code
        == 403
    )
    other.refresh_from_db()
    assert other.is_active and AssignmentRule.objects.exists()


def test_another_lenders_members_rules_and_invitations_are_404(
    client, rival_owner, owner, officer, buying_lender
):
    rule = AssignmentRule.objects.create(lender=buying_lender, membership=officer.membership)
    inv = Invitation.objects.create(lender=buying_lender, email="a@example.com", expires_at=timezone.now())
    client.force_login(rival_owner)
    assert (
        client.post(
            reverse("portal:member_update", args=[officer.membership.pk]), {"action": "deactivate"}
        ).status_code
        == 404
    )
    assert (
        client.post(
            reverse("portal:assignment_rule_update", args=[rule.pk]), {"action": "delete"}
        ).status_code
        == 404
    )
    assert (
        client.post(reverse("portal:invitation_update", args=[inv.pk]), {"action": "revoke"}).status_code
        == 404
    )
    page = client.get(reverse("portal:team")).content.decode()
    assert officer.email not in page and "a@example.com" not in page
    officer.membership.refresh_from_db()
    assert officer.membership.is_active and AssignmentRule.objects.exists()
    inv.refresh_from_db()
    assert inv.revoked_at is None


def test_the_portal_shell_shows_team_links_to_managers_only(client, owner, officer):
    client.force_login(owner)
    html = client.get(reverse("portal:inbox")).content.decode()
    assert reverse("portal:team") in html and reverse("portal:assignment_rules") in html
    client.force_login(officer)
    html = client.get(reverse("portal:inbox")).content.decode()
    assert reverse("portal:team") not in html
