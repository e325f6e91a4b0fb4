"""Browser tests of the portal a loan officer lives in (issue 15, section 5): a phone's first screen, a lead
worked from first call to funded, and the floor beside a subscription's price. Chromium (Debian's) driven by
Playwright against a live server."""

import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from marketplace.models import Delivery, PriceFloor
from marketplace.services import delivery_reassign, lead_distribute
from marketplace.tests.factories import MemberFactory, QualifiedLeadFactory, make_subscription
from portal.tests.browser import TIMEOUT_MS, login

pytest_plugins = ["portal.tests.browser"]
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}  # an iPhone 12 to 15's CSS viewport


@pytest.fixture
def maria(buying_lender, officer) -> Delivery:
    """Maria's lead, sold to us and handed to our officer (through the service, as the portal does)."""
    make_subscription(buying_lender, states=["TX"], price="40.00")
    lead = QualifiedLeadFactory(consumer__first_name="Maria", consumer__last_name="Gonzalez")
    [delivery] = lead_distribute(lead_id=lead.pk)
    delivery_reassign(delivery=delivery, membership=officer.membership)
    return delivery


@pytest.fixture
def phone_page(_chromium):
    context = _chromium.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    context.set_default_timeout(TIMEOUT_MS)
    yield context.new_page()
    context.close()


def _box(page, selector: str) -> dict:
    return page.evaluate(
        "(s) => { const r = document.querySelector(s).getBoundingClientRect();"
        " return {top: r.top, bottom: r.bottom, height: r.height}; }",
        selector,
    )


@pytest.mark.parametrize("who", ["officer", "owner"])  # an owner's nav has eight sections, an officer's three
def test_on_a_phone_the_header_takes_an_eighth_and_call_is_on_the_first_screen(
    phone_page, live_server, buying_lender, officer, owner, maria, who
):
    page = phone_page
    login(page, live_server, who)
    header = _box(page, ".topbar")
    assert header["height"] <= PHONE["height"] / 8, header  # 105.5 px
    nav = _box(page, ".topbar__nav")
    assert nav["height"] <= 40, nav  # the sections stay on one row (they scroll sideways)

    page.goto(f"{live_server.url}/portal/leads/{maria.pk}/")
    assert _box(page, ".topbar")["height"] <= PHONE["height"] / 8
    call = page.get_by_role("link", name="Call Maria")
    expect(call).to_be_visible()
    expect(call).to_have_attribute("href", f"tel:+1{maria.lead.consumer.phone}")
    box = call.bounding_box()
    assert box is not None
    # On the first screen, unscrolled: even with a phone browser's toolbars (about 180 px of the 844).
    assert page.evaluate("window.scrollY") == 0
    assert box["y"] >= header["bottom"] and box["y"] + box["height"] <= PHONE["height"] - 180, box


def test_an_officer_works_a_lead_from_first_call_to_funded(browser_page, live_server, officer, maria):
    page = browser_page
    login(page, live_server, "officer")
    page.get_by_role("link", name="Maria Gonzalez").click()
    expect(page.get_by_text("None yet: waiting")).to_be_visible()

    page.get_by_label("What did you do?").select_option("call")
    page.get_by_label("Outcome").select_option("reached")
    page.get_by_role("button", name="Log activity").click()

    expect(page.get_by_text("Call logged. Lead moved to Contacted.")).to_be_visible()
    expect(page.locator(".page-head .badge")).to_have_text("Contacted")
    expect(page.get_by_role("button", name="Mark contacted")).to_have_count(0)
    expect(page.get_by_text(re.compile(r"^after \d+ s$"))).to_be_visible()  # the response time, in words

    page.get_by_role("button", name="Mark application").click()
    page.get_by_role("button", name="Mark approved").click()
    page.get_by_role("button", name="Mark funded").click()  # no amount yet
    amount = page.get_by_label("Funded loan amount ($)")
    expect(page.get_by_role("alert").filter(has_text="Enter the funded loan amount")).to_have_text(
        "Enter the funded loan amount, in dollars, to mark this lead funded."
    )
    expect(amount).to_be_focused()
    expect(amount).to_have_attribute("aria-invalid", "true")
    maria.refresh_from_db()
    assert maria.status == "approved"  # nothing was sent

    amount.fill("350000")
    expect(page.get_by_text("Enter the funded loan amount, in dollars")).to_have_count(0)  # cleared as typed
    page.get_by_role("button", name="Mark funded").click()
    expect(page.get_by_text("Lead moved to Funded.")).to_be_visible()

    # Back in the inbox the clock has stopped: the row says how long the first contact took.
    page.get_by_role("link", name="← Inbox").click()
    row = page.locator("tr", has_text="Maria Gonzalez")
    expect(row).to_contain_text(re.compile(r"first contact after\s+\d+ s"))
    expect(row.locator("time[data-timer]")).to_have_count(0)


def test_the_floor_shows_beside_the_price_and_follows_the_terms(browser_page, live_server, owner):
    PriceFloor.objects.create(purpose="purchase", exclusive=False, state="", price=Decimal("30.00"))
    PriceFloor.objects.create(purpose="purchase", exclusive=True, state="", price=Decimal("60.00"))
    page = browser_page
    login(page, live_server, "owner")
    page.goto(f"{live_server.url}/portal/subscriptions/new/")
    floor = page.locator("#price-floor")
    expect(floor).to_have_text("The floor for shared purchase leads is $30.00: bid at least that.")
    page.get_by_label("Exclusive (the only buyer)").check()  # no reload: htmx brings the new floor
    expect(floor).to_have_text("The floor for exclusive purchase leads is $60.00: bid at least that.")
    page.get_by_label("Purchase", exact=True).uncheck()
    expect(floor).to_contain_text("No floor applies")


def test_an_officer_sees_their_analytics_beside_the_team(
    browser_page, live_server, buying_lender, officer, maria
):
    colleague = MemberFactory(lender=buying_lender, role="officer", username="colleague")
    other = lead_distribute(lead_id=QualifiedLeadFactory(consumer__first_name="Other").pk)[0]
    delivery_reassign(delivery=other, membership=colleague)
    page = browser_page
    login(page, live_server, "officer")
    page.get_by_role("navigation", name="Portal").get_by_role("link", name="Analytics").click()
    expect(page.get_by_text("The leads assigned to you")).to_be_visible()
    table = page.locator("table.vs-team")

    def cells(label: str):
        row = table.locator("tr").filter(has=page.get_by_role("rowheader", name=label, exact=True))
        return row.locator("td")

    expect(cells("You").first).to_have_text("1")  # leads: Maria
    expect(cells("Your team").first).to_have_text("2")  # Maria and the colleague's lead
    expect(page.get_by_role("heading", name="By loan officer")).to_have_count(0)
