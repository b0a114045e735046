"""Every generated e-invoice, for every tax case, passes the official EN 16931 rules.

CII and UBL are checked with the CEN/TC 434 Schematron (compiled XSLT, run by
Saxon), the CII also against the Factur-X XSD, and the Factur-X PDF must carry
the very CII it was made from.
"""

from __future__ import annotations

import io

import pytest
from facturx import xml_check_xsd
from lxml import etree
from pypdf import PdfReader

from invoices import tax
from invoices.einvoice import EInvoiceUnavailable, einvoice_xml
from invoices.einvoice.facturx import FACTURX_FILENAME, facturx_pdf
from invoices.models import Invoice
from tests.factories import make_invoice
from tests.invoices.tax_cases import CASES, EXPECTED, issued_invoice, spanish_seller

pytestmark = [pytest.mark.django_db, pytest.mark.einvoice]

RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)


def assert_no_fatal(rules, xml: bytes) -> None:
    fatal = rules.fatal(xml)
    assert not fatal, "EN 16931 rules failed:\n" + "\n".join(str(f) for f in fatal)


@pytest.mark.parametrize("case", CASES)
def test_cii_passes_every_en16931_rule(case, cii_rules):
    xml = einvoice_xml(issued_invoice(case), "cii")
    assert_no_fatal(cii_rules, xml)
    assert xml_check_xsd(xml, flavor="factur-x", level="en16931")


@pytest.mark.parametrize("case", CASES)
def test_ubl_passes_every_en16931_rule(case, ubl_rules):
    xml = einvoice_xml(issued_invoice(case), "ubl")
    assert_no_fatal(ubl_rules, xml)


@pytest.mark.parametrize("case", CASES)
def test_facturx_pdf_embeds_the_cii(case, cii_rules):
    invoice = issued_invoice(case)
    reader = PdfReader(io.BytesIO(facturx_pdf(invoice)))
    [embedded] = reader.attachments[FACTURX_FILENAME]
    assert embedded == einvoice_xml(invoice, "cii")
    assert_no_fatal(cii_rules, embedded)
    xmp = reader.xmp_metadata
    assert xmp is not None
    text = xmp.rdf_root.toxml()
    assert "pdfaid:part" in text and "EN 16931" in text
    assert invoice.friendly_id in "".join(page.extract_text() for page in reader.pages)


@pytest.mark.parametrize("case", CASES)
def test_the_xml_carries_the_frozen_treatment(case):
    invoice = issued_invoice(case)
    _kind, category, rate = EXPECTED[case]
    cii = etree.fromstring(einvoice_xml(invoice, "cii"))
    header_tax = cii.find(
        f".//{{{RAM}}}ApplicableHeaderTradeSettlement/{{{RAM}}}ApplicableTradeTax"
    )
    assert header_tax.findtext(f"{{{RAM}}}CategoryCode") == category
    if category == tax.Category.OUTSIDE_SCOPE:
        assert header_tax.find(f"{{{RAM}}}RateApplicablePercent") is None
    else:
        assert header_tax.findtext(f"{{{RAM}}}RateApplicablePercent") == f"{rate.normalize():f}"
    assert header_tax.findtext(f"{{{RAM}}}ExemptionReason", "") == invoice.tax_exemption_reason
    ubl = etree.fromstring(einvoice_xml(invoice, "ubl"))
    assert ubl.findtext(f"{{{CBC}}}ID") == invoice.friendly_id
    assert ubl.findtext(f".//{{{CBC}}}PayableAmount") == f"{invoice.cost:.2f}"


def test_user_data_is_escaped():
    spanish_seller()
    invoice = issued_invoice("reverse_charge")
    line = invoice.line_items.first()
    line.name = '<b>Gold</b> & "co" ]]> \''
    line.save()
    for syntax in ("cii", "ubl"):
        names = etree.fromstring(einvoice_xml(invoice, syntax)).iter("{*}Name")
        assert line.name in [element.text for element in names]


def test_control_characters_are_dropped_not_fatal(cii_rules):
    invoice = issued_invoice("domestic")
    line = invoice.line_items.first()
    line.name, line.description = "Plan\x0b Pro\x01", "Page\x0cbreak"
    line.save()
    xml = einvoice_xml(invoice, "cii")
    names = [element.text for element in etree.fromstring(xml).iter("{*}Name")]
    assert "Plan Pro" in names
    assert_no_fatal(cii_rules, xml)


def test_a_failing_facturx_still_stores_the_plain_pdf(monkeypatch, caplog):
    from invoices.einvoice import facturx

    invoice = issued_invoice("domestic")

    def broken(_invoice):
        raise ValueError("XSD says no")

    monkeypatch.setattr(facturx, "facturx_pdf", broken)
    content = facturx.issued_pdf_bytes(invoice)
    assert PdfReader(io.BytesIO(content)).attachments == {}
    assert "Factur-X failed" in caplog.text


def test_a_draft_is_no_einvoice():
    spanish_seller()
    with pytest.raises(EInvoiceUnavailable):
        einvoice_xml(make_invoice(), "cii")


def test_the_stored_pdf_of_an_issued_invoice_is_factur_x(django_capture_on_commit_callbacks):
    from invoices.pdf import invoice_pdf_content

    with django_capture_on_commit_callbacks(execute=True):
        invoice = issued_invoice("eu_consumer", state=Invoice.State.PENDING)
    invoice.refresh_from_db()
    reader = PdfReader(io.BytesIO(invoice_pdf_content(invoice)))
    assert FACTURX_FILENAME in reader.attachments


def test_an_invoice_without_country_codes_keeps_a_plain_pdf(django_capture_on_commit_callbacks):
    from invoices.pdf import invoice_pdf_content

    with django_capture_on_commit_callbacks(execute=True):
        invoice = make_invoice(state=Invoice.State.PENDING)
    invoice.refresh_from_db()
    assert PdfReader(io.BytesIO(invoice_pdf_content(invoice))).attachments == {}
