"""The customer's document: what it says of the invoice's state, the bank details of the
invoice's currency only when something is due, the seller's registration details,
the watermark within the page, the logo, and the VAT breakdown of a mixed invoice.

With DOC_IMAGES=<directory>, the documented cases are also written there as PNGs
(`pdftoppm -r 60`), the images of docs/invoices.md.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from pypdf import PdfReader

from accounts.models import Seller, SellerBankAccount
from invoices import services, tax
from invoices.einvoice.facturx import credit_note_facturx_pdf, facturx_pdf
from invoices.models import Invoice
from invoices.pdf import credit_note_pdf_bytes, customer_status, invoice_pdf_bytes
from tests.factories import ACTOR, AccountFactory, make_invoice
from tests.invoices.tax_cases import buyer, issued_invoice, spanish_seller

pytestmark = pytest.mark.django_db
S = Invoice.State
D = Decimal
EUR_IBAN = "ES79 2100 0813 6101 2345 6789"
USD_IBAN = "GB33 BUKB 2020 1555 5555 55"
DEFAULT_IBAN = "ES91 2100 0418 4502 0005 1332"  # the profile's, tax_cases.SPANISH_SELLER
# Words of the internal state machine that a customer must never read.
INTERNAL = ("pending", "finalized", "unpaid", "awaiting", "failed", "open")


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    return tmp_path


@pytest.fixture
def seller() -> Seller:
    seller = spanish_seller()
    seller.registration_id = "B58378431, Registro Mercantil de Madrid, tomo 1234, hoja M-56789"
    seller.registered_office = "Calle de Alcalá 42, 28014 Madrid, Spain"
    seller.legal_form = "Sociedad Limitada"
    seller.share_capital = "3,000.00 EUR"
    seller.save()
    SellerBankAccount.objects.create(
        seller=seller, currency="EUR", iban=EUR_IBAN.replace(" ", ""), bic="CAIXESBBXXX",
        account_holder="Nube Facturación S.L.", bank_name="CaixaBank",
    )  # fmt: skip
    SellerBankAccount.objects.create(
        seller=seller, currency="USD", iban=USD_IBAN.replace(" ", ""), bic="BUKBGB22",
        account_holder="Nube Facturación S.L.", bank_name="Barclays",
    )  # fmt: skip
    return seller


def text_of(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def invoice_in(currency: str, state: str = S.PENDING) -> Invoice:
    account = AccountFactory(
        org_name="Cliente S.A.", currency=currency, country_code="ES", vat_code="ESA12345674"
    )
    return make_invoice(account=account, lines=[("2", "50.00")], state=state)


class TestStatus:
    @pytest.mark.parametrize(
        ("state", "label"),
        [
            (S.OPEN, "Draft"),
            (S.FINALIZED, "Draft"),
            (S.PENDING, "Payment due"),
            (S.UNPAID, "Payment due"),
            (S.FAILED, "Payment due"),
            (S.PAID, "Paid"),
            (S.CANCELLED, "Cancelled"),
        ],
    )
    def test_the_document_says_what_the_customer_needs(self, seller, state, label):
        invoice = invoice_in("EUR", state)
        assert customer_status(invoice).label == label
        text = text_of(invoice_pdf_bytes(invoice))
        assert label.upper() in text or label in text
        lowered = text.lower()
        for word in INTERNAL:
            assert word not in lowered, (word, state)

    def test_a_partly_paid_invoice_says_so(self, seller):
        invoice = invoice_in("EUR", S.PENDING)
        services.invoice_payment_record(
            invoice=invoice, amount=D("10"), paid_on=invoice.issued_on, actor=ACTOR
        )
        invoice.refresh_from_db()
        assert customer_status(invoice).label == "Partly paid"
        assert "PARTLY PAID" in text_of(invoice_pdf_bytes(invoice)).upper()


class TestBankDetails:
    @pytest.mark.parametrize(
        ("currency", "iban"), [("EUR", EUR_IBAN), ("USD", USD_IBAN), ("GBP", DEFAULT_IBAN)]
    )
    def test_the_account_of_the_invoices_currency_or_the_default_one(self, seller, currency, iban):
        invoice = invoice_in(currency)
        text = text_of(invoice_pdf_bytes(invoice))
        assert f"Bank transfer details ({currency})" in text
        assert iban in text
        others = {EUR_IBAN, USD_IBAN, DEFAULT_IBAN} - {iban}
        assert not any(other in text for other in others)

    def test_frozen_at_issue(self, seller):
        invoice = invoice_in("EUR")
        SellerBankAccount.objects.filter(currency="EUR").update(iban="DE89370400440532013000")
        invoice.refresh_from_db()
        assert EUR_IBAN in text_of(invoice_pdf_bytes(invoice))

    @pytest.mark.parametrize("state", [S.PAID, S.CANCELLED])
    def test_not_printed_when_nothing_is_due(self, seller, state):
        text = text_of(invoice_pdf_bytes(invoice_in("EUR", state)))
        assert "Bank transfer" not in text and EUR_IBAN not in text

    def test_not_printed_once_credited_in_full(self, seller):
        invoice = invoice_in("EUR")
        services.credit_note_create(
            invoice=invoice, reason="Void", amount=invoice.cost_without_vat, actor=ACTOR
        )
        invoice.refresh_from_db()
        assert invoice.amount_due() == 0
        text = text_of(invoice_pdf_bytes(invoice))
        assert "Bank transfer" not in text and "PAID" in text.upper()

    def test_printed_on_a_partly_paid_invoice(self, seller):
        invoice = invoice_in("EUR", S.UNPAID)
        services.invoice_payment_record(
            invoice=invoice, amount=D("10"), paid_on=invoice.issued_on, actor=ACTOR
        )
        invoice.refresh_from_db()
        assert EUR_IBAN in text_of(invoice_pdf_bytes(invoice))

    def test_a_draft_previews_them_but_not_an_empty_one(self, seller):
        assert EUR_IBAN in text_of(invoice_pdf_bytes(invoice_in("EUR", S.OPEN)))
        empty = make_invoice(account=AccountFactory(currency="EUR"), lines=[])
        assert "Bank transfer" not in text_of(invoice_pdf_bytes(empty))

    def test_the_e_invoice_pays_to_the_currencys_account(self, seller):
        from invoices.einvoice import einvoice_xml

        invoice = issued_invoice("domestic")
        xml = einvoice_xml(invoice, "ubl").decode()
        assert EUR_IBAN.replace(" ", "") in xml and DEFAULT_IBAN.replace(" ", "") not in xml


class TestRegistration:
    def test_printed_in_the_footer_of_invoices_and_credit_notes_and_frozen(self, seller):
        invoice = invoice_in("EUR")
        seller.registration_id = "changed later"
        seller.save()
        invoice.refresh_from_db()
        note = services.credit_note_create(invoice=invoice, reason="x", amount=D(1), actor=ACTOR)
        for text in (text_of(invoice_pdf_bytes(invoice)), text_of(credit_note_pdf_bytes(note))):
            flat = " ".join(text.split())
            assert "Sociedad Limitada" in flat
            assert "Share capital 3,000.00 EUR" in flat
            assert "Registered office: Calle de Alcalá 42, 28014 Madrid, Spain" in flat
            assert "Company registration no. B58378431, Registro Mercantil de Madrid" in flat
            assert "changed later" not in flat

    def test_nothing_printed_without_them(self):
        spanish_seller()
        text = text_of(invoice_pdf_bytes(invoice_in("EUR")))
        assert "Company registration" not in text and "Registered office" not in text


class TestPage:
    def test_the_watermark_stays_within_the_page(self, seller, tmp_path):
        pdftoppm = shutil.which("pdftoppm")
        if pdftoppm is None:
            pytest.skip("pdftoppm (poppler-utils) is not installed")
        from PIL import Image

        for state in (S.OPEN, S.CANCELLED):
            pdf = tmp_path / f"{state}.pdf"
            pdf.write_bytes(invoice_pdf_bytes(invoice_in("EUR", state)))
            subprocess.run(
                [pdftoppm, "-r", "50", "-png", "-singlefile", str(pdf), str(tmp_path / state)],
                check=True,
            )
            image = Image.open(tmp_path / f"{state}.png").convert("RGB")
            width, height = image.size

            # The watermark is a pale red: no pixel of it may touch the page's edges.
            def reddish(pixel) -> bool:
                r, g, b = pixel
                return r > g + 12 and r > b + 12

            edges = [(x, y) for x in range(width) for y in (0, height - 1)]
            edges += [(x, y) for y in range(height) for x in (0, width - 1)]
            assert not any(reddish(image.getpixel(point)) for point in edges), state
            assert any(
                reddish(image.getpixel((x, y)))
                for x in range(0, width, 3)
                for y in range(height // 3, 2 * height // 3, 3)
            ), "the watermark is on the page"

    def test_the_logo_appears_when_the_seller_has_one(self, seller, media):
        from PIL import Image

        path = media / "seller" / "logo.png"
        path.parent.mkdir()
        Image.new("RGB", (40, 20), (31, 58, 95)).save(path)
        invoice = invoice_in("EUR")
        note = services.credit_note_create(invoice=invoice, reason="x", amount=D(1), actor=ACTOR)
        assert not any(
            page.images for page in PdfReader(io.BytesIO(invoice_pdf_bytes(invoice))).pages
        )
        seller.logo.name = "seller/logo.png"
        seller.save()
        for content in (invoice_pdf_bytes(invoice), credit_note_pdf_bytes(note)):
            assert any(page.images for page in PdfReader(io.BytesIO(content)).pages)


def mixed_invoice() -> Invoice:
    lines = [
        services.NewLine(name="Plan Pro", unit_price=D("490.00")),
        services.NewLine(name="Usage", quantity=D("1250"), unit_price=D("0.12")),
        services.NewLine(
            name="Handbook (print)", quantity=D("3"), unit_price=D("33.33"), vat_category="S",
            vat_rate=D("4"),
        ),
        services.NewLine(name="Onboarding course", unit_price=D("250.00"), vat_category="E"),
    ]  # fmt: skip
    invoice = services.invoice_create_with_lines(
        account=buyer("domestic"), lines=lines, issue=True, actor=ACTOR
    )
    invoice.refresh_from_db()
    return invoice


def test_a_mixed_invoice_prints_one_vat_row_per_rate_and_each_lines_rate(seller):
    invoice = mixed_invoice()
    flat = " ".join(text_of(invoice_pdf_bytes(invoice)).split())
    assert "S: standard rate 21% 640.00 EUR 134.40 EUR" in flat
    assert "S: standard rate 4% 99.99 EUR 4.00 EUR" in flat
    assert "E: exempt 0% 250.00 EUR 0.00 EUR" in flat
    assert tax.MENTION_EXEMPT in flat
    assert "VAT 138.40 EUR" in flat and "Total 1,128.39 EUR" in flat
    assert "Handbook (print) 3 33.33 4% 99.99" in flat


def test_a_mixed_credit_note_prints_its_breakdown(seller):
    invoice = mixed_invoice()
    plan, _usage, book, course = invoice.line_items.all()
    note = services.credit_note_create(
        invoice=invoice,
        reason="Returned",
        lines=[services.CreditLine(line.pk, D("1")) for line in (plan, book, course)],
        actor=ACTOR,
    )
    flat = " ".join(text_of(credit_note_pdf_bytes(note)).split())
    assert "S: standard rate 21% 490.00 EUR 102.90 EUR" in flat
    assert "S: standard rate 4% 33.33 EUR 1.33 EUR" in flat
    assert "E: exempt 0% 250.00 EUR 0.00 EUR" in flat
    assert "Total credited 877.56 EUR" in flat


# The documented cases: docs/invoices.md shows them.
DOC_CASES = ("domestic", "reverse_charge", "eu_consumer", "outside_eu")


def test_the_documented_invoices_render(seller):
    """The PDFs docs/invoices.md shows; written as PNGs with DOC_IMAGES=<directory>."""
    out = os.environ.get("DOC_IMAGES")
    documents = {f"invoice-{case}": facturx_pdf(issued_invoice(case)) for case in DOC_CASES}
    mixed = mixed_invoice()
    documents["invoice-mixed"] = facturx_pdf(mixed)
    plan, _usage, book, _course = mixed.line_items.all()
    note = services.credit_note_create(
        invoice=mixed,
        reason="Two handbooks returned, one month of the plan refunded",
        lines=[services.CreditLine(plan.pk, D("1")), services.CreditLine(book.pk, D("2"))],
        actor=ACTOR,
    )
    documents["credit-note-mixed"] = credit_note_facturx_pdf(note)
    paid = issued_invoice("domestic", state=S.PAID)
    documents["invoice-paid"] = invoice_pdf_bytes(paid)
    assert "Bank transfer" not in text_of(documents["invoice-paid"])
    for name, content in documents.items():
        text = text_of(content)
        assert "Nube Facturación S.L." in text, name
        assert "Company registration no." in " ".join(text.split()), name
    if out and shutil.which("pdftoppm"):
        directory = Path(out)
        directory.mkdir(parents=True, exist_ok=True)
        for name, content in documents.items():
            pdf = directory / f"{name}.pdf"
            pdf.write_bytes(content)
            subprocess.run(
                ["pdftoppm", "-r", "60", "-png", "-singlefile", str(pdf), str(directory / name)],
                check=True,
            )
            pdf.unlink()
