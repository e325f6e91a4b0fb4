"""Issue 15 in a browser, as a consumer and a lender walk it: the consumer submits the public form and the
first touch reaches them within seconds (the console SMS backend and Django's test mailbox are their phone
and inbox), the result page names who will contact them; the officer's My day shows the call task with
click-to-call; the consumer texts STOP through Twilio's signed webhook and no further text is sent, the
opt-out shown on the lead. The manager edits the first touch with the live preview updating as they type.
Screenshots at desktop width and at 390 px go to BROWSER_SCREENSHOTS (a directory) when it is set."""

import base64
import hashlib
import hmac
import os
import time
import urllib.parse
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from django.core import mail
from django.utils import timezone
from playwright.sync_api import expect

from integrations.channels import sms
from integrations.outreach import services as outreach
from lenders.models import AssignmentRule, Membership
from marketplace.models import Delivery
from marketplace.tests.factories import FORM_DATA, MemberFactory, make_subscription
from portal.tests.browser import login

pytest_plugins = ["portal.tests.browser"]
pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("daytime"),
]

TOKEN = "twilio-browser-token"
SHOTS = os.environ.get("BROWSER_SCREENSHOTS", "")


def shot(page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def at_phone_width(page, name: str) -> None:
    """The same page at 390 px (an iPhone 12-15): nothing wider than the screen, and a screenshot."""
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, f"{name} scrolls sideways"
    shot(page, f"{name}-390")
    page.set_viewport_size({"width": 1280, "height": 800})


@pytest.fixture
def jane(buying_lender):
    member = MemberFactory(lender=buying_lender, role="officer", username="jane")
    member.user.first_name, member.user.last_name = "Jane", "Doe"
    member.user.save()
    Membership.objects.filter(pk=member.pk).update(
        nmls_id="2045511", phone="5125550199", booking_url="https://cal.example/jane"
    )
    AssignmentRule.objects.create(lender=buying_lender, membership=member)
    return member.user


def fill_the_form(page, data: dict[str, str]) -> None:
    page.locator(f'input[name="purpose"][value="{data["purpose"]}"]').check()
    for name, value in data.items():
        if name in ("purpose", "consent", "first_time_buyer", "military_service") or not value:
            continue
        field = page.locator(f'[name="{name}"]')
        if not field.is_visible():
            continue  # another purpose's field, hidden by the form's script
        if field.evaluate("e => e.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)
    page.locator('input[name="consent"]').check()


def twilio_post(url: str, params: dict[str, str]) -> int:
    """Twilio's request: a form POST signed over the public URL (its documented scheme, written out)."""
    data = url + "".join(k + params[k] for k in sorted(params))
    signature = base64.b64encode(hmac.new(TOKEN.encode(), data.encode(), hashlib.sha1).digest()).decode()
    request = urllib.request.Request(
        url,
        data=urllib.parse.urlencode(params).encode(),
        headers={"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def test_a_sale_to_first_touch_my_day_and_stop(browser_page, live_server, settings, buying_lender, jane):
    settings.SITE_URL = live_server.url
    settings.TWILIO_AUTH_TOKEN = TOKEN
    make_subscription(buying_lender, exclusive=True, price="90.00")
    page = browser_page

    # 1. The consumer fills the public form; the worker (eager here) qualifies and sells it on commit.
    page.goto(live_server.url + "/")
    fill_the_form(page, FORM_DATA)
    started = time.monotonic()
    page.get_by_role("button", name="See what I could borrow").click()
    expect(page.get_by_text("Who will contact you:")).to_be_visible(timeout=15_000)
    expect(page.get_by_text("Lone Star Lending: your loan officer Jane Doe, (512) 555-0199")).to_be_visible()
    expect(page.get_by_text("Only this lender has your request.")).to_be_visible()
    shot(page, "result-page")
    at_phone_width(page, "result-page")

    # 2. The first touch is on the consumer's phone and in their inbox within seconds of the submit.
    deadline = started + 10
    while not sms.outbox and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sms.outbox, "no first-touch text within 10 s"
    assert time.monotonic() - started < 10
    first_text = sms.outbox[0]
    assert first_text.to == "+15125550142" and "this is Jane Doe at Lone Star Lending" in first_text.body
    first_mail = next(m for m in mail.outbox if m.to == ["maria@example.com"])
    assert "Jane Doe, a loan officer with Lone Star Lending (NMLS #2045511)" in first_mail.body
    delivery = Delivery.objects.get(lead__consumer__email="maria@example.com")

    # 3. The officer's My day shows the call task, with click-to-call.
    login(page, live_server, "jane")
    page.get_by_role("link", name="My day").click()
    expect(page.get_by_role("heading", name="Due now")).to_be_visible()
    call = page.get_by_role("link", name="Call (512) 555-0142")
    expect(call).to_be_visible()
    assert call.get_attribute("href") == "tel:+15125550142"
    shot(page, "my-day")
    at_phone_width(page, "my-day")
    page.set_viewport_size({"width": 390, "height": 844})
    box = call.bounding_box()
    assert box is not None and box["y"] + box["height"] <= 844, "Call is below the fold at 390 px"
    page.set_viewport_size({"width": 1280, "height": 800})

    # 4. The consumer texts STOP: Twilio posts it, signed, to our public webhook.
    assert (
        twilio_post(
            live_server.url + "/hooks/twilio/sms",
            {
                "AccountSid": "AC" + "0" * 32,
                "Body": "STOP",
                "From": "+15125550142",
                "MessageSid": "SM" + "5" * 32,
                "To": "+15005550006",
            },
        )
        == 200
    )
    # Beat, an hour on: the text at 1 h is not sent (nor anything later).
    texts = len(sms.outbox)
    outreach.outreach_run_due(now=timezone.now() + timedelta(hours=1, minutes=1))
    outreach.outreach_run_due(now=timezone.now() + timedelta(hours=25))
    assert len(sms.outbox) == texts == 1

    # 5. The lead page shows the opt-out and the stopped routine.
    page.goto(f"{live_server.url}/portal/leads/{delivery.pk}/")
    expect(page.get_by_text("Texts: opted out")).to_be_visible()
    expect(page.get_by_text("stopped", exact=True)).to_be_visible()
    expect(page.get_by_text("(the consumer opted out)")).to_be_visible()
    shot(page, "lead-stopped")


def test_the_first_touch_editor_previews_as_the_manager_types(browser_page, live_server, owner):
    owner.first_name, owner.last_name = "Olivia", "Owner"
    owner.save()
    page = browser_page
    login(page, live_server, "owner")
    page.get_by_role("link", name="Settings").click()
    expect(page.get_by_role("heading", name="First touch")).to_be_visible()
    subject = page.locator('[data-preview="subject"]')
    expect(subject).to_have_text("Maria, about your mortgage request with Lone Star Lending")
    page.get_by_label("E-mail subject").fill("Hello {{first_name}}, up to {{estimate}}")
    expect(subject).to_have_text("Hello Maria, up to $350,000")  # htmx swapped the preview, nothing saved
    page.get_by_role("textbox", name="Text message").fill("{{officer_name}} here, {{first_name}}")
    text = page.locator('[data-preview="text"]')
    expect(text).to_have_text("Olivia Owner here, Maria Reply STOP to opt out.")
    page.get_by_label("E-mail body").fill("Your {{ssn}}")
    expect(page.get_by_text("Unknown merge field {{ssn}}")).to_be_visible()
    shot(page, "first-touch-editor-error")
    body = "Hi {{first_name}},\n\nBook a call: {{booking_url}}\nI'm {{officer_name}}."
    page.get_by_label("E-mail body").fill(body)
    expect(page.locator('[data-preview="body"]')).to_contain_text("I'm Olivia Owner.")
    expect(page.locator('[data-preview="body"]')).not_to_contain_text("Book a call")  # no link: line left out
    shot(page, "first-touch-editor")
    at_phone_width(page, "first-touch-editor")
    page.get_by_role("button", name="Save first touch").click()
    expect(page.get_by_text("First touch saved")).to_be_visible()
    assert outreach.message_template_for(lender=Membership.objects.get(user=owner).lender).email_subject == (
        "Hello {{first_name}}, up to {{estimate}}"
    )


def test_the_sequence_editor_and_my_day_read_well_on_a_phone(browser_page, live_server, owner):
    page = browser_page
    login(page, live_server, "owner")
    page.goto(f"{live_server.url}/portal/settings/sequences/")
    expect(page.get_by_role("link", name="First 24 hours")).to_be_visible()
    shot(page, "sequences")
    page.get_by_role("link", name="First 24 hours").click()
    expect(page.get_by_text("Step 6")).to_be_visible()
    shot(page, "sequence-form")
    at_phone_width(page, "sequence-form")
    page.goto(f"{live_server.url}/portal/my-day/")
    expect(page.get_by_text("Nothing to call right now.")).to_be_visible()
    at_phone_width(page, "my-day-empty")
