"""The finance workspace in a real browser: Debian's headless Chromium driven by Playwright.

Never downloads a browser: it uses /usr/bin/chromium (CI installs the package).
Screenshots are kept under the test artifacts folder (tests/support/artifacts.py)
for a human to look at.
"""

from __future__ import annotations

import shutil

import pytest
from django.contrib.auth.models import Group
from pypdf import PdfReader

from invoices.models import Invoice
from tests.browser.conftest import ARTIFACTS, CHROMIUM
from tests.factories import AccountFactory, make_invoice

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    # serialized_rollback: the flush after each test would drop the staff groups of
    # migration 0002; this puts them back for the next one.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(not shutil.which(CHROMIUM), reason="needs Debian's chromium package"),
]


def test_finance_reviews_filters_issues_and_downloads(
    live_server, browser_page, finance_login, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    page = browser_page
    # given a draft of this month and an issued invoice of another account
    draft = make_invoice(account=AccountFactory(org_name="Browser Buyer"), lines=[("3", "12.50")])
    make_invoice(account=AccountFactory(org_name="Already Issued"), state=Invoice.State.PENDING)
    month = draft.period.strftime("%Y-%m")

    # log in
    page.goto(f"{live_server.url}/admin/")
    page.fill("#id_username", finance_login[0])
    page.fill("#id_password", finance_login[1])
    with page.expect_navigation():
        page.click("input[type=submit]")
    page.wait_for_selector("#staff-dashboard-link")
    page.screenshot(path=ARTIFACTS / "01-admin-index.png", full_page=True)

    # filter by state, then by month
    page.goto(f"{live_server.url}/admin/invoices/invoice/")
    with page.expect_navigation():
        page.click("#changelist-filter a[href*='state__exact=open']")
    with page.expect_navigation():
        page.click(f"#changelist-filter a[href*='month={month}']")
    assert "state__exact=open" in page.url and f"month={month}" in page.url
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1
    assert "Browser Buyer" in rows.first.inner_text()
    # only drafts listed: nothing is owed, so there are no totals to show
    assert page.locator("#selection-totals").count() == 0
    page.screenshot(path=ARTIFACTS / "02-filtered-list.png", full_page=True)

    # open the invoice
    with page.expect_navigation():
        rows.first.locator("th a").click()
    page.wait_for_selector("#line_items-group")
    assert "Browser Buyer" in page.content()
    page.screenshot(path=ARTIFACTS / "03-draft.png", full_page=True)

    # issue it with the action
    page.go_back()
    page.check(f"input[name=_selected_action][value='{draft.pk}']")
    page.select_option("select[name=action]", "issue_invoices")
    with page.expect_navigation():
        page.click("button[name=index]")
    message = page.locator("ul.messagelist li").first.inner_text()
    draft.refresh_from_db()
    assert message == f"Issued invoice {draft.friendly_id} to Browser Buyer, due {draft.due_on}."
    page.screenshot(path=ARTIFACTS / "04-issued-message.png", full_page=True)
    draft.refresh_from_db()
    assert draft.state == Invoice.State.PENDING and draft.friendly_id

    # download its PDF from the invoice page
    page.goto(f"{live_server.url}/admin/invoices/invoice/{draft.pk}/change/")
    with page.expect_download() as download_info:
        page.click("a#download-pdf")
    download = download_info.value
    target = ARTIFACTS / f"invoice-{draft.friendly_id}.pdf"
    download.save_as(target)
    text = PdfReader(target).pages[0].extract_text()
    assert draft.friendly_id in text and "Browser Buyer" in text and "37.50" in text

    # the dashboard shows its charts
    page.goto(f"{live_server.url}/staff/dashboard/")
    assert page.locator(".revenue-chart").count() >= 1
    assert page.locator("#usage-by-service").is_visible()
    page.screenshot(path=ARTIFACTS / "05-dashboard.png", full_page=True)


def test_auditor_gets_no_actions(live_server, browser_page, django_user_model, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    user = django_user_model.objects.create_user(
        "auditor", password="auditor-pw-123", is_staff=True
    )
    user.groups.add(Group.objects.get(name="Auditor"))
    make_invoice()
    page = browser_page
    page.goto(f"{live_server.url}/admin/login/?next=/admin/invoices/invoice/")
    page.fill("#id_username", "auditor")
    page.fill("#id_password", "auditor-pw-123")
    page.click("input[type=submit]")
    page.wait_for_selector("#result_list")
    assert page.locator("select[name=action]").count() == 0
    page.screenshot(path=ARTIFACTS / "06-auditor-list.png", full_page=True)
