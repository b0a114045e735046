"""Every generated credit note e-invoice, for every tax case, passes the official EN 16931 rules.

A credit note is document type 381 referring to the invoice it credits: a UBL
`CreditNote` with `CreditNoteLine`s, or a CII whose settlement names the
invoice. Its stored PDF is Factur-X, with the very CII it was made from.
"""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from facturx import xml_check_xsd
from lxml import etree
from pypdf import PdfReader

from invoices import services, tax
from invoices.einvoice import EInvoiceUnavailable, credit_note_xml
from invoices.einvoice.facturx import (
    FACTURX_FILENAME,
    credit_note_facturx_pdf,
    credit_note_stored_pdf_bytes,
)
from invoices.models import CreditNote, Invoice
from tests.factories import make_invoice
from tests.invoices.einvoice.test_rules import assert_no_fatal
from tests.invoices.tax_cases import CASES, EXPECTED, issued_invoice

pytestmark = [pytest.mark.django_db, pytest.mark.einvoice]

RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
UBL_CREDIT_NOTE = "{urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2}CreditNote"
# by lines: part of each line; by amount: one line; whole: all that is left,
# the note that takes exactly the VAT left (its rounding may differ by a cent).
MODES = ("lines", "amount", "whole")


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)


def credit(invoice: Invoice, mode: str) -> CreditNote:
    if mode == "amount":
        return services.credit_note_create(
            invoice=invoice, reason="Goodwill", amount=Decimal("10.00"), actor="t"
        )
    first, second = invoice.line_items.all()
    if mode == "whole":
        # A first note by amount, then the rest: the last one takes the VAT left.
        services.credit_note_create(
            invoice=invoice, reason="Goodwill", amount=Decimal("0.03"), actor="t"
        )
        invoice.refresh_from_db()
        net_left = invoice.cost_without_vat - Decimal("0.03")
        return services.credit_note_create(
            invoice=invoice, reason="Cancelled", amount=net_left, actor="t"
        )
    return services.credit_note_create(
        invoice=invoice,
        reason="Wrong quantity",
        lines=[
            services.CreditLine(line_item_id=first.pk, quantity=Decimal("1")),
            services.CreditLine(line_item_id=second.pk, quantity=Decimal("250")),
        ],
        actor="t",
    )


def credit_note(case: str, mode: str = "lines") -> CreditNote:
    return credit(issued_invoice(case), mode)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", CASES)
def test_cii_credit_note_passes_every_en16931_rule(case, mode, cii_rules):
    xml = credit_note_xml(credit_note(case, mode), "cii")
    assert_no_fatal(cii_rules, xml)
    assert xml_check_xsd(xml, flavor="factur-x", level="en16931")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", CASES)
def test_ubl_credit_note_passes_every_en16931_rule(case, mode, ubl_rules):
    xml = credit_note_xml(credit_note(case, mode), "ubl")
    assert_no_fatal(ubl_rules, xml)


@pytest.mark.parametrize("case", CASES)
def test_facturx_credit_note_pdf_embeds_the_cii(case, cii_rules):
    note = credit_note(case)
    reader = PdfReader(io.BytesIO(credit_note_facturx_pdf(note)))
    [embedded] = reader.attachments[FACTURX_FILENAME]
    assert embedded == credit_note_xml(note, "cii")
    assert_no_fatal(cii_rules, embedded)
    xmp = reader.xmp_metadata
    assert xmp is not None
    text = xmp.rdf_root.toxml()
    assert "pdfaid:part" in text and "EN 16931" in text
    assert note.number in "".join(page.extract_text() for page in reader.pages)


@pytest.mark.parametrize("case", CASES)
def test_the_credit_note_xml_carries_its_frozen_data(case):
    note = credit_note(case)
    invoice = note.invoice
    _kind, category, rate = EXPECTED[case]

    cii = etree.fromstring(credit_note_xml(note, "cii"))
    assert cii.findtext(f".//{{{RAM}}}TypeCode") == "381"
    referenced = cii.find(f".//{{{RAM}}}InvoiceReferencedDocument")
    assert referenced.findtext(f"{{{RAM}}}IssuerAssignedID") == invoice.friendly_id
    header_tax = cii.find(
        f".//{{{RAM}}}ApplicableHeaderTradeSettlement/{{{RAM}}}ApplicableTradeTax"
    )
    assert header_tax.findtext(f"{{{RAM}}}CategoryCode") == category
    if category == tax.Category.OUTSIDE_SCOPE:
        assert header_tax.find(f"{{{RAM}}}RateApplicablePercent") is None
    else:
        assert header_tax.findtext(f"{{{RAM}}}RateApplicablePercent") == f"{rate.normalize():f}"
    assert header_tax.findtext(f"{{{RAM}}}ExemptionReason", "") == note.tax_exemption_reason
    assert header_tax.findtext(f"{{{RAM}}}CalculatedAmount") == f"{note.vat_amount:.2f}"
    assert cii.find(f".//{{{RAM}}}DueDateDateTime") is None

    ubl = etree.fromstring(credit_note_xml(note, "ubl"))
    assert ubl.tag == UBL_CREDIT_NOTE
    assert ubl.findtext(f"{{{CBC}}}ID") == note.number
    assert ubl.findtext(f"{{{CBC}}}CreditNoteTypeCode") == "381"
    assert ubl.find(f"{{{CBC}}}DueDate") is None
    reference = ubl.find(f"{{{CAC}}}BillingReference/{{{CAC}}}InvoiceDocumentReference")
    assert reference.findtext(f"{{{CBC}}}ID") == invoice.friendly_id
    assert reference.findtext(f"{{{CBC}}}IssueDate") == invoice.issued_on.isoformat()
    quantities = [e.text for e in ubl.iter(f"{{{CBC}}}CreditedQuantity")]
    assert quantities == ["1", "250"]
    assert ubl.find(f".//{{{CAC}}}InvoiceLine") is None
    assert ubl.findtext(f".//{{{CBC}}}PayableAmount") == f"{note.cost:.2f}"


def test_a_credit_note_by_amount_is_one_line():
    note = credit_note("domestic", "amount")
    ubl = etree.fromstring(credit_note_xml(note, "ubl"))
    [line] = ubl.iter(f"{{{CAC}}}CreditNoteLine")
    assert line.findtext(f"{{{CBC}}}LineExtensionAmount") == "10.00"


def test_a_credit_note_of_an_invoice_without_country_codes_is_no_einvoice():
    invoice = make_invoice(state=Invoice.State.PENDING)
    note = credit(invoice, "amount")
    with pytest.raises(EInvoiceUnavailable):
        credit_note_xml(note, "cii")
    assert PdfReader(io.BytesIO(credit_note_stored_pdf_bytes(note))).attachments == {}


def test_a_failing_facturx_still_stores_the_plain_credit_note_pdf(monkeypatch, caplog):
    from invoices.einvoice import facturx

    note = credit_note("domestic", "amount")

    def broken(_note):
        raise ValueError("XSD says no")

    monkeypatch.setattr(facturx, "credit_note_facturx_pdf", broken)
    content = facturx.credit_note_stored_pdf_bytes(note)
    assert PdfReader(io.BytesIO(content)).attachments == {}
    assert "Factur-X failed" in caplog.text


def test_the_stored_pdf_of_a_credit_note_is_factur_x(django_capture_on_commit_callbacks):
    invoice = issued_invoice("reverse_charge")
    with django_capture_on_commit_callbacks(execute=True):
        note = credit(invoice, "amount")
    note.refresh_from_db()
    assert note.pdf
    with note.pdf.open("rb") as stored:
        reader = PdfReader(io.BytesIO(stored.read()))
    [embedded] = reader.attachments[FACTURX_FILENAME]
    assert embedded == credit_note_xml(note, "cii")
