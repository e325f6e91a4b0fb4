"""Browser tests of the lender portal: chromium (Debian's) driven by Playwright against a live server."""

import re

import pytest
from playwright.sync_api import expect

from marketplace.services import lead_distribute
from marketplace.tests.factories import QualifiedLeadFactory, make_subscription
from portal.tests.browser import login

pytest_plugins = ["portal.tests.browser"]
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def subscribed(buying_lender):
    make_subscription(buying_lender, states=["TX"], price="40.00")
    return buying_lender


def deliver(first_name: str):
    lead = QualifiedLeadFactory(consumer__first_name=first_name, consumer__last_name="Live")
    [delivery] = lead_distribute(lead_id=lead.pk)
    return delivery


def test_login_lands_in_the_inbox(browser_page, live_server, owner):
    login(browser_page, live_server, "owner")
    expect(browser_page.get_by_text("Lone Star Lending")).to_be_visible()
    expect(browser_page.get_by_text("No leads yet")).to_be_visible()


def test_a_lead_delivered_while_the_inbox_is_open_appears_without_a_reload(
    browser_page, live_server, owner, subscribed
):
    deliver("Earlier")
    login(browser_page, live_server, "owner")
    expect(browser_page.get_by_role("link", name="Earlier Live")).to_be_visible()
    browser_page.evaluate("window.__marker = 'same page'")

    deliver("Fresh")

    expect(browser_page.get_by_role("link", name="Fresh Live")).to_be_visible(timeout=15_000)
    assert browser_page.evaluate("window.__marker") == "same page"  # no reload happened
    # The client-side timer ticks from the delivery time.
    timer = browser_page.locator("tr", has_text="Fresh Live").locator("time[data-timer]")
    expect(timer).to_have_text(re.compile(r"^\d+s$|^\d+m \d\ds$"))


def test_change_status_along_the_pipeline(browser_page, live_server, owner, subscribed):
    delivery = deliver("Pipeline")
    login(browser_page, live_server, "owner")
    browser_page.get_by_role("link", name="Pipeline Live").click()
    for label in ("Contacted", "Application", "Approved"):
        browser_page.get_by_role("button", name=f"Mark {label.lower()}").click()
        expect(browser_page.get_by_text(f"Lead moved to {label}.")).to_be_visible()
    browser_page.get_by_label("Funded loan amount ($)").fill("350000")
    browser_page.get_by_role("button", name="Mark funded").click()
    expect(browser_page.get_by_text("Lead moved to Funded.")).to_be_visible()
    expect(browser_page.get_by_text("end of the pipeline")).to_be_visible()
    delivery.refresh_from_db()
    assert delivery.status == "funded" and str(delivery.funded_amount) == "350000.00"


def test_log_a_call_and_download_the_letter(browser_page, live_server, owner, subscribed):
    deliver("Letter")
    login(browser_page, live_server, "owner")
    browser_page.get_by_role("link", name="Letter Live").click()
    browser_page.get_by_label("What did you do?").select_option("call")
    browser_page.get_by_label("Outcome").select_option("reached")
    browser_page.get_by_role("button", name="Log activity").click()
    expect(browser_page.get_by_text("Call logged.")).to_be_visible()
    expect(browser_page.locator(".timeline")).to_contain_text("Reached")

    with browser_page.expect_download() as info:
        browser_page.get_by_role("link", name="Pre-qualification letter (PDF)").click()
    download = info.value
    assert download.suggested_filename.startswith("prequalification-")
    with open(download.path(), "rb") as f:
        assert f.read(4) == b"%PDF"
