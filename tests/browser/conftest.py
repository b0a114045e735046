"""Shared by the browser tests: Debian's Chromium at a 1,280 px wide window, and a signed-in
Finance clerk (the helpers are in tests/support/browser.py).

Screenshots go to the test artifacts folder (tests/support/artifacts.py), under browser/.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from tests.support.browser import ARTIFACTS, CHROMIUM, LAUNCH_ARGS, WIDTH


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
