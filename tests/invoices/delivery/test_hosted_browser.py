"""The hosted pages' downloads in Debian's headless Chromium: a customer opens the
invoice's link and then the credit note's, and downloads each one's Factur-X PDF and
its UBL and CII e-invoices."""

from __future__ import annotations

import shutil
from decimal import Decimal

import pytest
from lxml import etree
from pypdf import PdfReader

from invoices import services
from invoices.delivery.hosted import hosted_url
from invoices.einvoice import credit_note_xml, einvoice_xml
from invoices.einvoice.facturx import FACTURX_FILENAME
from tests.invoices.tax_cases import issued_invoice
from tests.support.artifacts import artifacts_dir
from tests.support.browser import CHROMIUM, LAUNCH_ARGS

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


def _download(page, selector: str, target):
    with page.expect_download() as info:
        page.click(selector)
    download = info.value
    download.save_as(target)
    return download.suggested_filename


def test_the_invoice_and_its_credit_note_download_as_einvoices(live_server, settings, tmp_path):
    from playwright.sync_api import sync_playwright

    settings.MEDIA_ROOT = tmp_path
    settings.PUBLIC_BASE_URL = live_server.url
    invoice = issued_invoice("reverse_charge")
    note = services.credit_note_create(
        invoice=invoice, reason="Service outage", amount=Decimal("20.00"), actor="test"
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        page = browser.new_context(accept_downloads=True).new_page()
        page.set_default_timeout(30_000)
        try:
            # the invoice's page: its Factur-X PDF, UBL and CII
            page.goto(hosted_url(invoice))
            assert page.locator("#invoice-number").inner_text() == invoice.friendly_id
            page.screenshot(path=ARTIFACTS / "hosted-03-einvoice-downloads.png", full_page=True)
            name = _download(page, "#download-pdf", tmp_path / "invoice.pdf")
            assert name == f"invoice-{invoice.friendly_id}.pdf"
            reader = PdfReader(tmp_path / "invoice.pdf")
            assert reader.attachments[FACTURX_FILENAME] == [einvoice_xml(invoice, "cii")]
            for syntax in ("ubl", "cii"):
                target = tmp_path / f"invoice-{syntax}.xml"
                name = _download(page, f"#download-{syntax}", target)
                assert name == f"invoice-{invoice.friendly_id}-{syntax}.xml"
                assert target.read_bytes() == einvoice_xml(invoice, syntax)

            # the credit note's own page, from its link
            page.goto(hosted_url(note))
            assert page.locator("#credit-note-number").inner_text() == note.number
            assert page.locator("#credited-invoice").inner_text() == invoice.friendly_id
            page.screenshot(path=ARTIFACTS / "hosted-04-credit-note.png", full_page=True)
            name = _download(page, "#download-pdf", tmp_path / "note.pdf")
            assert name == f"credit-note-{note.number}.pdf"
            reader = PdfReader(tmp_path / "note.pdf")
            assert reader.attachments[FACTURX_FILENAME] == [credit_note_xml(note, "cii")]
            assert note.number in reader.pages[0].extract_text()
            for syntax in ("ubl", "cii"):
                target = tmp_path / f"note-{syntax}.xml"
                name = _download(page, f"#download-{syntax}", target)
                assert name == f"credit-note-{note.number}-{syntax}.xml"
                assert etree.fromstring(target.read_bytes()) is not None
                assert target.read_bytes() == credit_note_xml(note, syntax)
            # back to the invoice through the credit note's link to it
            with page.expect_navigation():
                page.click("#credited-invoice")
            assert page.locator("#invoice-number").inner_text() == invoice.friendly_id
        finally:
            browser.close()
