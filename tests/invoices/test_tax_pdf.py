"""The frozen VAT treatment is printed: breakdown, category, rate, mention, reason."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

from invoices import tax
from invoices.pdf import invoice_pdf_bytes
from tests.invoices.tax_cases import issued_invoice


def pdf_text(invoice) -> str:
    reader = PdfReader(io.BytesIO(invoice_pdf_bytes(invoice)))
    return " ".join(" ".join(page.extract_text().split()) for page in reader.pages)


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("case", "printed"),
    [
        ("domestic", ["S: standard rate", "21%"]),
        ("reverse_charge", ["AE: reverse charge", "0%", tax.MENTION_REVERSE_CHARGE]),
        ("eu_consumer", ["S: standard rate", "20%"]),
        ("outside_eu", ["O: outside the scope of VAT", tax.MENTION_OUTSIDE_EU_BUSINESS]),
        ("exempt", ["E: exempt", "Exempt under Article 20.Uno.3 Ley 37/1992 (medical care)"]),
    ],
)
def test_the_treatment_is_printed(case, printed):
    text = pdf_text(issued_invoice(case))
    for words in printed:
        assert words in text, words


@pytest.mark.django_db
def test_a_draft_prints_no_treatment_before_issue():
    from tests.factories import make_invoice

    text = pdf_text(make_invoice())
    assert "VAT category" not in text


@pytest.mark.django_db
def test_the_vat_row_does_not_show_the_buyers_vat_id():
    invoice = issued_invoice("reverse_charge")
    text = pdf_text(invoice)
    assert f"VAT ({invoice.account.vat_code})" not in text
    assert f"VAT: {invoice.account.vat_code}" in text  # in the buyer's address block


@pytest.mark.django_db
def test_a_draft_of_an_eu_seller_says_which_treatment_issuing_will_apply():
    from tests.factories import make_invoice
    from tests.invoices.tax_cases import buyer, spanish_seller

    spanish_seller()
    text = pdf_text(make_invoice(account=buyer("reverse_charge")))
    assert "VAT on issue: EU reverse charge (category AE 0%)." in text
