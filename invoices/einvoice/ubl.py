"""OASIS UBL 2.1 invoice or credit note, Peppol BIS Billing 3.0 customization of EN 16931.

Element order follows the UBL schema's sequences. A credit note is its own
document type (root `CreditNote`, `CreditNoteLine` with `CreditedQuantity`),
has no due date and refers to the invoice it credits (`BillingReference`).
"""

from __future__ import annotations

from decimal import Decimal

from lxml import etree

from invoices.einvoice.document import EInvoiceDocument, Party, amount_text, decimal_text, xml_text

INVOICE_NS = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
CREDIT_NOTE_NS = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
NSMAP = {None: INVOICE_NS, "cac": CAC, "cbc": CBC}
_PREFIXES = {"cac": CAC, "cbc": CBC}
CUSTOMIZATION_ID = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
PROFILE_ID = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrib: str):
    prefix, name = tag.split(":")
    element = etree.SubElement(parent, f"{{{_PREFIXES[prefix]}}}{name}", attrib)
    if text is not None:
        element.text = xml_text(text)
    return element


def _party(parent: etree._Element, tag: str, party: Party) -> None:
    element = _sub(_sub(parent, tag), "cac:Party")
    if party.identifier:
        _sub(_sub(element, "cac:PartyIdentification"), "cbc:ID", party.identifier)
    _sub(_sub(element, "cac:PartyName"), "cbc:Name", party.name)
    address = _sub(element, "cac:PostalAddress")
    if party.address_line1:
        _sub(address, "cbc:StreetName", party.address_line1)
    if party.address_line2:
        _sub(address, "cbc:AdditionalStreetName", party.address_line2)
    if party.city:
        _sub(address, "cbc:CityName", party.city)
    if party.zip:
        _sub(address, "cbc:PostalZone", party.zip)
    if party.state:
        _sub(address, "cbc:CountrySubentity", party.state)
    _sub(_sub(address, "cac:Country"), "cbc:IdentificationCode", party.country_code)
    if party.vat_id:
        scheme = _sub(element, "cac:PartyTaxScheme")
        _sub(scheme, "cbc:CompanyID", party.vat_id)
        _sub(_sub(scheme, "cac:TaxScheme"), "cbc:ID", "VAT")
    legal = _sub(element, "cac:PartyLegalEntity")
    _sub(legal, "cbc:RegistrationName", party.name)
    if party.registration_id:
        _sub(legal, "cbc:CompanyID", party.registration_id)
    if party.legal_info:
        _sub(legal, "cbc:CompanyLegalForm", party.legal_info)
    if party.email:
        _sub(_sub(element, "cac:Contact"), "cbc:ElectronicMail", party.email)


def _tax_category(parent: etree._Element, tag: str, category: str, rate: Decimal | None):
    element = _sub(parent, tag)
    _sub(element, "cbc:ID", category)
    if rate is not None:
        _sub(element, "cbc:Percent", decimal_text(rate))
    return element


def build(document: EInvoiceDocument) -> bytes:
    currency = document.currency

    def money(parent: etree._Element, tag: str, amount: Decimal) -> None:
        _sub(parent, tag, amount_text(amount), currencyID=currency)

    credit = document.is_credit_note
    if credit:
        root = etree.Element(
            f"{{{CREDIT_NOTE_NS}}}CreditNote", nsmap={**NSMAP, None: CREDIT_NOTE_NS}
        )
    else:
        root = etree.Element(f"{{{INVOICE_NS}}}Invoice", nsmap=NSMAP)
    _sub(root, "cbc:CustomizationID", CUSTOMIZATION_ID)
    _sub(root, "cbc:ProfileID", PROFILE_ID)
    _sub(root, "cbc:ID", document.number)
    _sub(root, "cbc:IssueDate", document.issued_on.isoformat())
    if document.due_on is not None and not credit:
        _sub(root, "cbc:DueDate", document.due_on.isoformat())
    _sub(root, "cbc:CreditNoteTypeCode" if credit else "cbc:InvoiceTypeCode", document.type_code)
    for note in document.notes:
        _sub(root, "cbc:Note", note)
    _sub(root, "cbc:DocumentCurrencyCode", currency)
    period = _sub(root, "cac:InvoicePeriod")
    _sub(period, "cbc:StartDate", document.period_start.isoformat())
    _sub(period, "cbc:EndDate", document.period_end.isoformat())
    if document.preceding_number:
        reference = _sub(_sub(root, "cac:BillingReference"), "cac:InvoiceDocumentReference")
        _sub(reference, "cbc:ID", document.preceding_number)
        if document.preceding_issued_on is not None:
            _sub(reference, "cbc:IssueDate", document.preceding_issued_on.isoformat())
    _party(root, "cac:AccountingSupplierParty", document.seller)
    _party(root, "cac:AccountingCustomerParty", document.buyer)
    if document.deliver_to_country:
        location = _sub(_sub(root, "cac:Delivery"), "cac:DeliveryLocation")
        country = _sub(_sub(location, "cac:Address"), "cac:Country")
        _sub(country, "cbc:IdentificationCode", document.deliver_to_country)
    if document.payment is not None:
        means = _sub(root, "cac:PaymentMeans")
        _sub(means, "cbc:PaymentMeansCode", document.payment.code)
        _sub(means, "cbc:PaymentID", document.number)
        account = _sub(means, "cac:PayeeFinancialAccount")
        _sub(account, "cbc:ID", document.payment.iban)
        if document.payment.account_name:
            _sub(account, "cbc:Name", document.payment.account_name)
        if document.payment.bic:
            branch = _sub(account, "cac:FinancialInstitutionBranch")
            _sub(branch, "cbc:ID", document.payment.bic)
    if document.payment_terms:
        _sub(_sub(root, "cac:PaymentTerms"), "cbc:Note", document.payment_terms)

    tax_total = _sub(root, "cac:TaxTotal")
    money(tax_total, "cbc:TaxAmount", document.vat)
    for row in document.breakdown:
        subtotal = _sub(tax_total, "cac:TaxSubtotal")
        money(subtotal, "cbc:TaxableAmount", row.taxable)
        money(subtotal, "cbc:TaxAmount", row.vat)
        category = _tax_category(subtotal, "cac:TaxCategory", row.category, row.rate)
        if row.exemption_code:
            _sub(category, "cbc:TaxExemptionReasonCode", row.exemption_code)
        if row.exemption_reason:
            _sub(category, "cbc:TaxExemptionReason", row.exemption_reason)
        _sub(_sub(category, "cac:TaxScheme"), "cbc:ID", "VAT")

    totals = _sub(root, "cac:LegalMonetaryTotal")
    money(totals, "cbc:LineExtensionAmount", document.net)
    money(totals, "cbc:TaxExclusiveAmount", document.net)
    money(totals, "cbc:TaxInclusiveAmount", document.total)
    money(totals, "cbc:PayableAmount", document.due)

    for line in document.lines:
        element = _sub(root, "cac:CreditNoteLine" if credit else "cac:InvoiceLine")
        _sub(element, "cbc:ID", str(line.position))
        quantity = "cbc:CreditedQuantity" if credit else "cbc:InvoicedQuantity"
        _sub(element, quantity, decimal_text(line.quantity), unitCode="C62")
        money(element, "cbc:LineExtensionAmount", line.net)
        item = _sub(element, "cac:Item")
        if line.description:
            _sub(item, "cbc:Description", line.description)
        _sub(item, "cbc:Name", line.name)
        category = _tax_category(item, "cac:ClassifiedTaxCategory", line.category, line.rate)
        _sub(_sub(category, "cac:TaxScheme"), "cbc:ID", "VAT")
        price = _sub(element, "cac:Price")
        _sub(price, "cbc:PriceAmount", decimal_text(line.unit_price), currencyID=currency)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
