"""Shared set-up for the portal's browser tests: one headless chromium per session, a fresh page per test,
and a `login` helper that signs a user in through the real login form.

Use it from any test module (the fixtures are registered per module, so ruff sees no unused import):

    pytest_plugins = ["portal.tests.browser"]
    pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

    def test_something(browser_page, live_server, owner):
        login(browser_page, live_server, "owner")          # from portal.tests.browser import login
        browser_page.goto(f"{live_server.url}/portal/")

Personas made by the fixtures in conftest.py have the password `pass-12345` (UserFactory).
"""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Playwright's sync API runs an asyncio loop in this thread; Django refuses ORM calls from a thread with a
# running loop unless told it is safe. It is: the tests call the ORM between Playwright calls, never inside.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PASSWORD = "pass-12345"  # UserFactory's password
TIMEOUT_MS = 10_000


def _need_chromium() -> None:
    if Path(CHROMIUM).exists():
        return
    reason = f"{CHROMIUM} is missing (apt-get install -y chromium)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"chromium is required under CI=true: {reason}", pytrace=False)
    pytest.skip(f"needs chromium: {reason}")


@pytest.fixture(scope="session")
def _chromium() -> Iterator:
    _need_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def browser_page(_chromium) -> Iterator:
    """A page in a fresh context (own cookies), desktop-sized, downloads allowed, short timeouts."""
    context = _chromium.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    yield page
    context.close()


def login(page, live_server, username: str, password: str = PASSWORD) -> None:
    """Sign in through the portal's login form and wait until the inbox is shown."""
    page.goto(f"{live_server.url}/portal/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/portal/**")
    page.get_by_role("heading", name="Inbox").wait_for()
