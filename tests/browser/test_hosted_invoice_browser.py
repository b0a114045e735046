"""The hosted invoice page in Debian's headless Chromium: a customer opens the link,
downloads the PDF and pays with a test card; the receipt and `invoice.paid` go out."""

from __future__ import annotations

import shutil

import pytest
from django.core import mail
from pypdf import PdfReader
from standardwebhooks import Webhook

from invoices.delivery.endpoints import webhook_endpoint_create
from invoices.delivery.hosted import hosted_url
from invoices.models import Invoice
from tests.factories import AccountFactory, make_invoice
from tests.support.artifacts import artifacts_dir
from tests.support.browser import CHROMIUM, LAUNCH_ARGS
from tests.support.receivers import WebhookReceiver

ARTIFACTS = artifacts_dir("browser")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(not shutil.which(CHROMIUM), reason="needs Debian's chromium package"),
]


@pytest.fixture(autouse=True)
def _sync_orm_beside_playwright(monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def test_a_customer_opens_downloads_and_pays(live_server, settings, tmp_path):
    from playwright.sync_api import sync_playwright

    settings.MEDIA_ROOT = tmp_path
    settings.PUBLIC_BASE_URL = live_server.url
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True
    with WebhookReceiver() as receiver, sync_playwright() as playwright:
        endpoint = webhook_endpoint_create(url=receiver.url, events=["invoice.paid"])
        account = AccountFactory(org_name="Hosted Buyer", card_token="")
        invoice = make_invoice(account=account, lines=[("3", "12.50")], state=Invoice.State.PENDING)
        mail.outbox.clear()
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        page = browser.new_context(accept_downloads=True).new_page()
        page.set_default_timeout(20_000)
        try:
            # the link from the e-mail, no login
            page.goto(hosted_url(invoice))
            assert page.locator("#invoice-number").inner_text() == invoice.friendly_id
            assert page.locator("#amount-due").inner_text() == "37.50 USD"
            page.screenshot(path=ARTIFACTS / "hosted-01-invoice.png", full_page=True)
            # the PDF
            with page.expect_download() as download_info:
                page.click("#download-pdf")
            target = tmp_path / "hosted.pdf"
            download_info.value.save_as(target)
            assert invoice.friendly_id in PdfReader(target).pages[0].extract_text()
            # pay with a test card
            page.select_option("#card-token", "tok_visa")
            with page.expect_navigation():
                page.click("#pay")
            assert "the invoice is paid" in page.locator("#outcome").inner_text()
            assert page.locator("#invoice-status").inner_text() == "Paid"
            assert page.locator("#pay").count() == 0
            page.screenshot(path=ARTIFACTS / "hosted-02-paid.png", full_page=True)
        finally:
            browser.close()
        invoice.refresh_from_db()
        assert invoice.state == Invoice.State.PAID
        assert [m.subject for m in mail.outbox] == [f"Receipt for invoice {invoice.friendly_id}"]
        assert len(receiver.requests) == 1
        request = receiver.requests[0]
        assert (
            Webhook(endpoint.secret).verify(request.body, request.headers)["type"] == "invoice.paid"
        )
