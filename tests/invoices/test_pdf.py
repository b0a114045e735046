"""The invoice PDF: its content, watermarks, long invoices, rendering once, and no network."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from django.core.management import call_command
from pypdf import PdfReader

from accounts.models import Seller
from billing.lib import pdf as pdf_lib
from invoices import services
from invoices.models import Invoice, InvoiceEvent
from invoices.pdf import (
    format_amount,
    format_quantity,
    format_unit_price,
    invoice_pdf_bytes,
    invoice_pdf_content,
)
from invoices.tasks import invoice_render_pdf, pdf_rendering_deferred
from tests.factories import AccountFactory, make_invoice

S = Invoice.State


def pdf_pages(content: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(content)).pages]


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def seller(db) -> Seller:
    seller = Seller.load()
    seller.name = "Seller S.L."
    seller.vat_id = "ESB0000001"
    seller.iban = "ES91 2100 0418 4502 0005 1332"
    seller.bic = "CAIXESBBXXX"
    seller.bank_name = "Banco"
    seller.invoice_footer = "Registered in Barcelona"
    seller.save()
    return seller


def test_amount_formatting_follows_the_currency():
    assert format_amount(Decimal("1234.5"), "EUR") == "1,234.50"
    assert format_amount(Decimal("12065"), "JPY") == "12,065"
    assert format_amount(Decimal("1.2345"), "KWD") == "1.235"
    assert format_unit_price(Decimal("0.04160000"), "USD") == "0.0416"
    assert format_unit_price(Decimal("59.00000000"), "USD") == "59.00"
    assert format_quantity(Decimal("2.5000")) == "2.5"
    assert format_quantity(Decimal("1500")) == "1,500"


@pytest.mark.django_db
class TestContent:
    def test_issued_invoice(self, seller, django_capture_on_commit_callbacks):
        account = AccountFactory(
            org_name="Buyer GmbH", currency="EUR", vat_rate=Decimal("19"), vat_code="DE123"
        )
        with django_capture_on_commit_callbacks(execute=True):
            invoice = make_invoice(account=account, lines=[("2", "1500.25")], state=S.PENDING)
        invoice.refresh_from_db()
        [text] = pdf_pages(invoice_pdf_content(invoice))
        assert invoice.friendly_id in text
        assert "Buyer GmbH" in text and "DE123" in text
        assert "Seller S.L." in text and "ESB0000001" in text
        assert "3,000.50" in text  # subtotal
        assert "570.10" in text  # VAT 19%
        assert "3,570.60 EUR" in text  # total
        assert "Payment due by" in text
        assert "ES91 2100 0418 4502 0005 1332" in text
        assert "Page 1 of 1" in text
        assert "DRAFT" not in text

    def test_draft_is_watermarked_and_unnumbered(self, seller):
        invoice = make_invoice(account=AccountFactory(org_name="Drafty"))
        [text] = pdf_pages(invoice_pdf_bytes(invoice))
        assert "DRAFT" in text
        assert "not numbered" in text
        assert "Drafty" in text

    def test_cancelled_is_watermarked_even_after_issue(self, seller):
        invoice = make_invoice(state=S.PENDING)
        invoice_render_pdf(invoice.pk)
        services.invoice_cancel(invoice=invoice, actor="t")
        invoice.refresh_from_db()
        [text] = pdf_pages(invoice_pdf_content(invoice))
        assert "CANCELLED" in text

    def test_paid_shows_the_payment(self, seller):
        invoice = make_invoice(state=S.PENDING)
        services.invoice_mark_paid(invoice=invoice, actor="t", reference="SEPA-42")
        invoice.refresh_from_db()
        [text] = pdf_pages(invoice_pdf_bytes(invoice))
        assert "Paid" in text and "SEPA-42" in text

    def test_frozen_buyer_details_are_printed_after_the_account_changes(self, seller):
        account = AccountFactory(org_name="Old Name")
        invoice = make_invoice(account=account, state=S.PENDING)
        account.org_name = "New Name"
        account.save()
        [text] = pdf_pages(invoice_pdf_bytes(invoice))
        assert "Old Name" in text and "New Name" not in text

    def test_long_invoice_has_pages_numbered_and_the_header_repeated(self, seller):
        invoice = make_invoice(lines=[("1", f"{n}.00") for n in range(1, 66)])
        pages = pdf_pages(invoice_pdf_bytes(invoice))
        assert len(pages) > 1
        assert f"Page 1 of {len(pages)}" in pages[0]
        assert f"Page {len(pages)} of {len(pages)}" in pages[-1]
        for page in pages:
            assert "UNIT PRICE" in page.upper()  # the table header on every page
            assert "DRAFT" in page  # and the watermark
        assert "Total" in pages[-1]


@pytest.mark.django_db
class TestRenderedOnce:
    def test_issue_renders_and_stores_after_commit(
        self, seller, django_capture_on_commit_callbacks
    ):
        invoice = make_invoice()
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            services.invoice_issue(invoice=invoice, actor="t")
        invoice.refresh_from_db()
        assert not invoice.pdf  # nothing slow inside the transaction
        for callback in callbacks:
            callback()
        invoice.refresh_from_db()
        assert invoice.pdf.name.startswith("invoices/")
        assert invoice.events.filter(kind=InvoiceEvent.Kind.PDF_RENDERED).count() == 1

    def test_deferred_rendering_queues_nothing_and_resumes_after(
        self, seller, django_capture_on_commit_callbacks
    ):
        first, second = make_invoice(), make_invoice()
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            with pdf_rendering_deferred():
                services.invoice_issue(invoice=first, actor="t")
        # bulk loads (the demo data) render on first view instead (the outbox still sends)
        assert _pdf_renders(callbacks) == []
        first.refresh_from_db()
        assert not first.pdf and invoice_pdf_content(first).startswith(b"%PDF")
        first.refresh_from_db()
        assert not first.pdf  # a read never stores
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            services.invoice_issue(invoice=second, actor="t")
        assert len(_pdf_renders(callbacks)) == 1
        second.refresh_from_db()
        assert second.pdf.name.startswith("invoices/")

    def test_stored_file_is_served_not_re_rendered(self, seller, monkeypatch):
        invoice = make_invoice(state=S.PENDING)
        invoice_render_pdf(invoice.pk)
        invoice.refresh_from_db()
        monkeypatch.setattr(
            "invoices.pdf.invoice_pdf_bytes",
            lambda inv: pytest.fail("an issued invoice's PDF must not be rendered again"),
        )
        content = invoice_pdf_content(invoice)
        with invoice.pdf.storage.open(invoice.pdf.name, "rb") as handle:
            assert content == handle.read()

    def test_missing_file_is_rendered_again(self, seller):
        invoice = make_invoice(state=S.PENDING)
        invoice_render_pdf(invoice.pk)
        invoice.refresh_from_db()
        invoice.pdf.storage.delete(invoice.pdf.name)
        assert invoice_pdf_content(invoice).startswith(b"%PDF")


@pytest.mark.django_db
class TestNoNetwork:
    def test_markup_in_user_data_is_escaped_and_never_fetched(self, seller, monkeypatch):
        fetched: list[str] = []
        real = pdf_lib.local_path

        def spy(url):
            fetched.append(url)
            return real(url)

        monkeypatch.setattr(pdf_lib, "local_path", spy)
        evil = '<img src="http://attacker.example/pixel.png">'
        account = AccountFactory(org_name=f"Evil {evil}")
        invoice = make_invoice(account=account, lines=[])
        services.line_item_add(
            invoice=invoice,
            name=f"Line {evil}",
            description=f'<link rel="stylesheet" href="https://cdn.example/x.css">{evil}',
            unit_price=Decimal("1"),
            actor="t",
        )
        invoice.refresh_from_db()
        [text] = pdf_pages(invoice_pdf_bytes(invoice))
        assert "attacker.example/pixel.png" in text.replace("\n", "")  # printed as text
        assert fetched == []  # nothing was even asked for

    @pytest.mark.parametrize(
        "url",
        [
            "http://example.com/logo.png",
            "https://example.com/font.woff",
            "ftp://example.com/x",
            "data:text/plain,hello",
            "file:///etc/passwd",
            "file://remote-host/share/x.png",
        ],
    )
    def test_fetcher_refuses_anything_but_local_project_files(self, url):
        with pytest.raises(pdf_lib.BlockedURL):
            pdf_lib.local_url_fetcher().fetch(url)

    def test_fetcher_reads_files_under_media(self, settings, tmp_path):
        logo = tmp_path / "seller" / "logo.png"
        logo.parent.mkdir()
        logo.write_bytes(b"\x89PNG fake")
        response = pdf_lib.local_url_fetcher().fetch(logo.as_uri())
        assert response.read() == b"\x89PNG fake"
        assert response.content_type == "image/png"

    def test_raw_remote_references_are_not_fetched(self, monkeypatch):
        import socket

        lookups: list[object] = []

        def no_network(*args, **kwargs):
            lookups.append(args)
            raise OSError("network is off in this test")

        monkeypatch.setattr(socket, "getaddrinfo", no_network)
        monkeypatch.setattr(socket, "create_connection", no_network)
        content = pdf_lib.html_to_pdf(
            '<link rel="stylesheet" href="https://cdn.example/x.css">'
            '<p style="background: url(http://example.com/bg.png)">x</p>'
            '<img src="http://example.com/a.png">'
        )
        assert content.startswith(b"%PDF")
        assert lookups == []

    def test_seller_logo_from_media_is_embedded(self, seller, media):
        from PIL import Image

        path = media / "seller" / "logo.png"
        path.parent.mkdir()
        Image.new("RGB", (40, 20), (31, 58, 95)).save(path)
        seller.logo.name = "seller/logo.png"
        seller.save()
        invoice = make_invoice()
        reader = PdfReader(io.BytesIO(invoice_pdf_bytes(invoice)))
        assert any(page.images for page in reader.pages)


@pytest.mark.django_db
class TestRenderPdfsCommand:
    def test_missing_dry_run_then_render(self, seller):
        issued = make_invoice(state=S.PENDING)
        make_invoice()  # drafts have no stored PDF
        out = io.StringIO()
        call_command("render_pdfs", "--missing", "--dry-run", "--no-progress", stdout=out)
        assert "1 invoice(s) without a PDF" in out.getvalue()
        issued.refresh_from_db()
        assert not issued.pdf
        out = io.StringIO()
        call_command("render_pdfs", "--missing", "--no-progress", stdout=out)
        assert "Rendered 1" in out.getvalue()
        issued.refresh_from_db()
        assert issued.pdf
        out = io.StringIO()
        call_command("render_pdfs", "--missing", "--no-progress", stdout=out)
        assert "Rendered 0" in out.getvalue()  # safe to re-run

    def test_requires_a_selection(self):
        from django.core.management.base import CommandError

        with pytest.raises(CommandError):
            call_command("render_pdfs")


@pytest.mark.django_db
class TestAmountsAndCreditNotes:
    def test_partly_paid_invoice_shows_amount_paid_and_due(self, seller):
        invoice = make_invoice(state=Invoice.State.UNPAID)
        services.invoice_payment_record(
            invoice=invoice, amount=Decimal("40"), paid_on=invoice.issued_on, actor="t"
        )
        invoice.refresh_from_db()
        text = pdf_pages(invoice_pdf_bytes(invoice))[0]
        assert "Amount paid 40.00 USD" in text
        assert "Amount due 60.00 USD" in text

    def test_credit_note_pdf(self, seller, django_capture_on_commit_callbacks):
        account = AccountFactory(org_name="Buyer GmbH", vat_rate=Decimal("19"))
        invoice = make_invoice(account=account, state=Invoice.State.PAID)
        with django_capture_on_commit_callbacks(execute=True):
            note = services.credit_note_create(
                invoice=invoice, reason="Two seats returned", amount=Decimal("20"), actor="t"
            )
        note.refresh_from_db()
        with note.pdf.open("rb") as handle:
            text = pdf_pages(handle.read())[0]
        for expected in (
            "CREDIT NOTE",
            note.number,
            invoice.friendly_id,
            "Buyer GmbH",
            seller.name,
            "Two seats returned",
            "VAT 19% 3.80 USD",
            "Total credited 23.80 USD",
            "23.80 USD added to your account's credit balance",
        ):
            assert expected in text, expected
        # and the invoice now shows what was credited
        invoice.refresh_from_db()
        assert "Credited −23.80 USD" in pdf_pages(invoice_pdf_bytes(invoice))[0]


def _pdf_renders(callbacks) -> list:
    """The after-commit callbacks that queue a PDF rendering (not the outbox's sends)."""
    return [c for c in callbacks if "_render_after_issue" in c.__qualname__]
