"""Invoices and credit notes that mix VAT categories and rates pass every EN 16931 rule:
one breakdown row per category and rate, each line with its own category; the
seller's registration details (BT-30, BT-33) and the bank account of the currency."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from facturx import xml_check_xsd
from lxml import etree
from pypdf import PdfReader

from accounts.models import SellerBankAccount
from invoices import services, tax
from invoices.einvoice import credit_note_xml, einvoice_xml
from invoices.einvoice.facturx import FACTURX_FILENAME, credit_note_facturx_pdf, facturx_pdf
from invoices.models import CreditNote, Invoice
from tests.factories import ACTOR
from tests.invoices.einvoice.test_rules import assert_no_fatal
from tests.invoices.tax_cases import buyer, spanish_seller

pytestmark = [pytest.mark.django_db, pytest.mark.einvoice]

RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
D = Decimal

# case -> the buyer and the lines' own categories (None: the invoice's treatment)
MIXES: dict[str, tuple[str, list[tuple[str, str, str | None, str | None]]]] = {
    # A Spanish business: 21%, the super-reduced 4%, an exempt course, a zero-rated item.
    "domestic_rates": (
        "domestic",
        [
            ("Plan Pro", "490.00", None, None),
            ("Handbook", "33.33", "S", "4"),
            ("Training day", "250.00", "E", None),
            ("Export freight", "12.50", "Z", None),
        ],
    ),
    # A German business: reverse-charged services and an intra-Community supply of goods.
    "reverse_charge_and_goods": (
        "reverse_charge",
        [
            ("Plan Pro", "490.00", None, None),
            ("Hardware token", "39.99", "K", None),
        ],
    ),
    # A French consumer: French VAT on the service, a reduced-rate e-book.
    "consumer_rates": (
        "eu_consumer",
        [("Plan Pro", "490.00", None, None), ("E-book", "9.99", "S", "5.5")],
    ),
    # A US company: goods exported (G) are the only category; no O line joins them.
    "export_goods": ("outside_eu", [("Appliance", "1200.00", "G", None)]),
}


def mixed_invoice(mix: str) -> Invoice:
    spanish_seller_with_registration()
    case, specs = MIXES[mix]
    lines = [
        services.NewLine(
            name=name,
            unit_price=D(price),
            quantity=D("3"),
            vat_category=category,
            vat_rate=None if rate is None else D(rate),
        )
        for name, price, category, rate in specs
    ]
    invoice = services.invoice_create_with_lines(
        account=buyer(case), lines=lines, issue=True, actor=ACTOR
    )
    invoice.refresh_from_db()
    return invoice


def spanish_seller_with_registration():
    seller = spanish_seller()
    seller.registration_id = "Registro Mercantil de Madrid, tomo 1234, hoja M-56789"
    seller.registered_office = "Calle de Alcalá 42, 28014 Madrid"
    seller.legal_form = "Sociedad Limitada"
    seller.share_capital = "3,000.00 EUR"
    seller.save()
    SellerBankAccount.objects.update_or_create(
        seller=seller,
        currency="EUR",
        defaults={
            "iban": "ES7921000813610123456789",
            "bic": "CAIXESBBXXX",
            "account_holder": "Nube",
        },
    )
    return seller


def credit_by_lines(invoice: Invoice) -> CreditNote:
    return services.credit_note_create(
        invoice=invoice,
        reason="Returned",
        lines=[services.CreditLine(line.pk, D("1")) for line in invoice.line_items.all()],
        actor=ACTOR,
    )


def credit_the_rest(invoice: Invoice) -> CreditNote:
    credit_by_lines(invoice)
    invoice.refresh_from_db()
    done = sum((note.cost_without_vat for note in invoice.credit_notes.all()), D(0))
    return services.credit_note_create(
        invoice=invoice, reason="Cancelled", amount=invoice.cost_without_vat - done, actor=ACTOR
    )


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)


@pytest.mark.parametrize("mix", MIXES)
def test_mixed_invoice_passes_every_rule(mix, cii_rules, ubl_rules):
    invoice = mixed_invoice(mix)
    cii = einvoice_xml(invoice, "cii")
    assert_no_fatal(cii_rules, cii)
    assert xml_check_xsd(cii, flavor="factur-x", level="en16931")
    assert_no_fatal(ubl_rules, einvoice_xml(invoice, "ubl"))


@pytest.mark.parametrize("mix", MIXES)
@pytest.mark.parametrize("credit", [credit_by_lines, credit_the_rest], ids=["lines", "rest"])
def test_mixed_credit_notes_pass_every_rule(mix, credit, cii_rules, ubl_rules):
    note = credit(mixed_invoice(mix))
    cii = credit_note_xml(note, "cii")
    assert_no_fatal(cii_rules, cii)
    assert xml_check_xsd(cii, flavor="factur-x", level="en16931")
    assert_no_fatal(ubl_rules, credit_note_xml(note, "ubl"))


def test_one_trade_tax_per_category_and_rate_and_each_line_its_own():
    invoice = mixed_invoice("domestic_rates")
    cii = etree.fromstring(einvoice_xml(invoice, "cii"))
    header = cii.findall(f".//{{{RAM}}}ApplicableHeaderTradeSettlement/{{{RAM}}}ApplicableTradeTax")
    summary = [
        (
            row.findtext(f"{{{RAM}}}CategoryCode"),
            row.findtext(f"{{{RAM}}}RateApplicablePercent"),
            row.findtext(f"{{{RAM}}}BasisAmount"),
            row.findtext(f"{{{RAM}}}CalculatedAmount"),
            row.findtext(f"{{{RAM}}}ExemptionReason"),
        )
        for row in header
    ]
    assert summary == [
        ("E", "0", "750.00", "0.00", tax.MENTION_EXEMPT),
        ("S", "4", "99.99", "4.00", None),
        ("S", "21", "1470.00", "308.70", None),
        ("Z", "0", "37.50", "0.00", None),
    ]
    lines = [
        item.findtext(f".//{{{RAM}}}SpecifiedLineTradeSettlement//{{{RAM}}}CategoryCode")
        for item in cii.iter(f"{{{RAM}}}IncludedSupplyChainTradeLineItem")
    ]
    assert lines == ["S", "S", "E", "Z"]
    ubl = etree.fromstring(einvoice_xml(invoice, "ubl"))
    subtotals = ubl.findall(f"{{{CAC}}}TaxTotal/{{{CAC}}}TaxSubtotal")
    assert [
        (s.findtext(f"{{{CAC}}}TaxCategory/{{{CBC}}}ID"), s.findtext(f"{{{CBC}}}TaxAmount"))
        for s in subtotals
    ] == [("E", "0.00"), ("S", "4.00"), ("S", "308.70"), ("Z", "0.00")]
    assert ubl.findtext(f"{{{CAC}}}TaxTotal/{{{CBC}}}TaxAmount") == "312.70"
    assert invoice.vat_amount == D("312.70")


def test_the_intra_community_supply_names_the_deliver_to_country():
    invoice = mixed_invoice("reverse_charge_and_goods")
    ubl = etree.fromstring(einvoice_xml(invoice, "ubl"))
    country = ubl.findtext(
        f"{{{CAC}}}Delivery/{{{CAC}}}DeliveryLocation/{{{CAC}}}Address/{{{CAC}}}Country/"
        f"{{{CBC}}}IdentificationCode"
    )
    assert country == "DE"
    codes = {
        s.findtext(f"{{{CAC}}}TaxCategory/{{{CBC}}}ID"): s.findtext(
            f"{{{CAC}}}TaxCategory/{{{CBC}}}TaxExemptionReasonCode"
        )
        for s in ubl.findall(f"{{{CAC}}}TaxTotal/{{{CAC}}}TaxSubtotal")
    }
    assert codes == {"AE": "VATEX-EU-AE", "K": "VATEX-EU-IC"}


def test_registration_details_and_the_currencys_account_are_in_both_syntaxes():
    invoice = mixed_invoice("consumer_rates")
    cii = etree.fromstring(einvoice_xml(invoice, "cii"))
    seller = cii.find(f".//{{{RAM}}}SellerTradeParty")
    assert seller.findtext(f"{{{RAM}}}SpecifiedLegalOrganization/{{{RAM}}}ID") == (
        "Registro Mercantil de Madrid, tomo 1234, hoja M-56789"
    )
    assert "share capital 3,000.00 EUR" in seller.findtext(f"{{{RAM}}}Description")
    assert cii.findtext(f".//{{{RAM}}}PayeePartyCreditorFinancialAccount/{{{RAM}}}IBANID") == (
        "ES7921000813610123456789"  # the EUR account, not the profile's default
    )
    ubl = etree.fromstring(einvoice_xml(invoice, "ubl"))
    legal = ubl.find(f"{{{CAC}}}AccountingSupplierParty/{{{CAC}}}Party/{{{CAC}}}PartyLegalEntity")
    assert legal.findtext(f"{{{CBC}}}CompanyID").startswith("Registro Mercantil")
    assert "Sociedad Limitada" in legal.findtext(f"{{{CBC}}}CompanyLegalForm")
    means = ubl.find(f"{{{CAC}}}PaymentMeans")
    assert means.findtext(f"{{{CBC}}}PaymentMeansCode") == "58"
    assert means.findtext(f"{{{CAC}}}PayeeFinancialAccount/{{{CBC}}}ID") == (
        "ES7921000813610123456789"
    )


def test_factur_x_pdfs_of_a_mixed_invoice_and_its_credit_note(cii_rules):
    invoice = mixed_invoice("domestic_rates")
    note = credit_by_lines(invoice)
    for content, xml in (
        (facturx_pdf(invoice), einvoice_xml(invoice, "cii")),
        (credit_note_facturx_pdf(note), credit_note_xml(note, "cii")),
    ):
        reader = PdfReader(io.BytesIO(content))
        [embedded] = reader.attachments[FACTURX_FILENAME]
        assert embedded == xml
        assert_no_fatal(cii_rules, embedded)
        text = "".join(page.extract_text() for page in reader.pages)
        assert "S: standard rate" in text and "E: exempt" in text and "Z: zero rated" in text
        assert tax.MENTION_EXEMPT in text and tax.MENTION_ZERO_RATED in text
        assert "Company registration no. Registro Mercantil de Madrid" in text
