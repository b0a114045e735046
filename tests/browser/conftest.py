"""Shared by the browser tests: Debian's Chromium at a 1,280 px wide window, a signed-in
Finance clerk, and a check that a page fits the window.

Screenshots go to the test artifacts folder (tests/support/artifacts.py), under browser/.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from tests.support.artifacts import artifacts_dir

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = artifacts_dir("browser")
WIDTH = 1280
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(autouse=True)
def _sync_orm_beside_playwright(monkeypatch):
    # Playwright's sync API runs an event loop in this thread; the ORM calls made
    # here (fixtures, assertions) are still plain synchronous ones. Scoped to
    # these tests so the flag never leaks into other tests' subprocesses.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def browser_page():
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        context = browser.new_context(
            accept_downloads=True, viewport={"width": WIDTH, "height": 900}
        )
        page = context.new_page()
        page.set_default_timeout(20_000)
        try:
            yield page
        finally:
            context.close()
            browser.close()


@pytest.fixture
def finance_login(django_user_model):
    user = django_user_model.objects.create_user(
        "finance", password="finance-password-123", is_staff=True
    )
    user.groups.add(Group.objects.get(name="Finance"))
    return "finance", "finance-password-123"


def sign_in(page, live_server, username: str, password: str, next_url: str = "/admin/") -> None:
    page.goto(f"{live_server.url}/admin/login/?next={next_url}")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    with page.expect_navigation():
        page.click("input[type=submit]")


def overflow(page) -> int:
    """How many pixels the page is wider than the window (0 when it fits)."""
    return page.evaluate(
        "() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
        " - window.innerWidth"
    )


def clipped(page, selector: str) -> list[str]:
    """Cells under `selector` whose text is cut off (wider content than their box)."""
    return page.evaluate(
        """(selector) => [...document.querySelectorAll(selector)]
            .filter(el => el.scrollWidth > el.clientWidth + 1)
            .map(el => `${el.className} (${el.scrollWidth - el.clientWidth}px): `
                       + el.innerText.slice(0, 40))""",
        selector,
    )


def fits(page, name: str) -> None:
    """Keep a screenshot and fail if the page scrolls sideways at 1,280 px."""
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)
    extra = overflow(page)
    assert extra <= 0, f"{name}: {extra}px wider than a {WIDTH}px window"
