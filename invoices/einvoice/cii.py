"""UN/CEFACT Cross Industry Invoice D16B, Factur-X / ZUGFeRD EN 16931 profile.

Element order follows the CII schema's sequences: the XSD refuses any other.
"""

from __future__ import annotations

import datetime as dt

from lxml import etree

from invoices.einvoice.document import EInvoiceDocument, Party, amount_text, decimal_text, xml_text

RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
NSMAP = {"rsm": RSM, "ram": RAM, "udt": UDT, "qdt": QDT}
GUIDELINE = "urn:cen.eu:en16931:2017"  # the Factur-X EN 16931 (COMFORT) profile


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrib: str):
    prefix, name = tag.split(":")
    element = etree.SubElement(parent, f"{{{NSMAP[prefix]}}}{name}", attrib)
    if text is not None:
        element.text = xml_text(text)
    return element


def _date(parent: etree._Element, tag: str, day: dt.date) -> None:
    holder = _sub(parent, tag)
    _sub(holder, "udt:DateTimeString", day.strftime("%Y%m%d"), format="102")


def _party(parent: etree._Element, tag: str, party: Party) -> None:
    element = _sub(parent, tag)
    if party.identifier:
        _sub(element, "ram:ID", party.identifier)
    _sub(element, "ram:Name", party.name)
    if party.legal_info:
        _sub(element, "ram:Description", party.legal_info)
    if party.registration_id:
        _sub(_sub(element, "ram:SpecifiedLegalOrganization"), "ram:ID", party.registration_id)
    address = _sub(element, "ram:PostalTradeAddress")
    if party.zip:
        _sub(address, "ram:PostcodeCode", party.zip)
    if party.address_line1:
        _sub(address, "ram:LineOne", party.address_line1)
    if party.address_line2:
        _sub(address, "ram:LineTwo", party.address_line2)
    if party.city:
        _sub(address, "ram:CityName", party.city)
    _sub(address, "ram:CountryID", party.country_code)
    if party.state:
        _sub(address, "ram:CountrySubDivisionName", party.state)
    if party.email:
        uri = _sub(element, "ram:URIUniversalCommunication")
        _sub(uri, "ram:URIID", party.email, schemeID="EM")
    if party.vat_id:
        registration = _sub(element, "ram:SpecifiedTaxRegistration")
        _sub(registration, "ram:ID", party.vat_id, schemeID="VA")


def build(document: EInvoiceDocument) -> bytes:
    currency = document.currency
    root = etree.Element(f"{{{RSM}}}CrossIndustryInvoice", nsmap=NSMAP)
    context = _sub(root, "rsm:ExchangedDocumentContext")
    guideline = _sub(context, "ram:GuidelineSpecifiedDocumentContextParameter")
    _sub(guideline, "ram:ID", GUIDELINE)

    header = _sub(root, "rsm:ExchangedDocument")
    _sub(header, "ram:ID", document.number)
    _sub(header, "ram:TypeCode", document.type_code)
    _date(header, "ram:IssueDateTime", document.issued_on)
    for note in document.notes:
        _sub(_sub(header, "ram:IncludedNote"), "ram:Content", note)

    transaction = _sub(root, "rsm:SupplyChainTradeTransaction")
    for line in document.lines:
        item = _sub(transaction, "ram:IncludedSupplyChainTradeLineItem")
        _sub(_sub(item, "ram:AssociatedDocumentLineDocument"), "ram:LineID", str(line.position))
        product = _sub(item, "ram:SpecifiedTradeProduct")
        _sub(product, "ram:Name", line.name)
        if line.description:
            _sub(product, "ram:Description", line.description)
        agreement = _sub(item, "ram:SpecifiedLineTradeAgreement")
        price = _sub(agreement, "ram:NetPriceProductTradePrice")
        _sub(price, "ram:ChargeAmount", decimal_text(line.unit_price))
        delivery = _sub(item, "ram:SpecifiedLineTradeDelivery")
        _sub(delivery, "ram:BilledQuantity", decimal_text(line.quantity), unitCode="C62")
        settlement = _sub(item, "ram:SpecifiedLineTradeSettlement")
        line_tax = _sub(settlement, "ram:ApplicableTradeTax")
        _sub(line_tax, "ram:TypeCode", "VAT")
        _sub(line_tax, "ram:CategoryCode", line.category)
        if line.rate is not None:
            _sub(line_tax, "ram:RateApplicablePercent", decimal_text(line.rate))
        summation = _sub(settlement, "ram:SpecifiedTradeSettlementLineMonetarySummation")
        _sub(summation, "ram:LineTotalAmount", amount_text(line.net))

    agreement = _sub(transaction, "ram:ApplicableHeaderTradeAgreement")
    _party(agreement, "ram:SellerTradeParty", document.seller)
    _party(agreement, "ram:BuyerTradeParty", document.buyer)
    delivery = _sub(transaction, "ram:ApplicableHeaderTradeDelivery")
    if document.deliver_to_country:
        ship_to = _sub(_sub(delivery, "ram:ShipToTradeParty"), "ram:PostalTradeAddress")
        _sub(ship_to, "ram:CountryID", document.deliver_to_country)

    settlement = _sub(transaction, "ram:ApplicableHeaderTradeSettlement")
    _sub(settlement, "ram:PaymentReference", document.number)
    _sub(settlement, "ram:InvoiceCurrencyCode", currency)
    if document.payment is not None:
        means = _sub(settlement, "ram:SpecifiedTradeSettlementPaymentMeans")
        _sub(means, "ram:TypeCode", document.payment.code)
        account = _sub(means, "ram:PayeePartyCreditorFinancialAccount")
        _sub(account, "ram:IBANID", document.payment.iban)
        if document.payment.account_name:
            _sub(account, "ram:AccountName", document.payment.account_name)
        if document.payment.bic:
            bank = _sub(means, "ram:PayeeSpecifiedCreditorFinancialInstitution")
            _sub(bank, "ram:BICID", document.payment.bic)
    for row in document.breakdown:
        trade_tax = _sub(settlement, "ram:ApplicableTradeTax")
        _sub(trade_tax, "ram:CalculatedAmount", amount_text(row.vat))
        _sub(trade_tax, "ram:TypeCode", "VAT")
        if row.exemption_reason:
            _sub(trade_tax, "ram:ExemptionReason", row.exemption_reason)
        _sub(trade_tax, "ram:BasisAmount", amount_text(row.taxable))
        _sub(trade_tax, "ram:CategoryCode", row.category)
        if row.exemption_code:
            _sub(trade_tax, "ram:ExemptionReasonCode", row.exemption_code)
        if row.rate is not None:
            _sub(trade_tax, "ram:RateApplicablePercent", decimal_text(row.rate))
    period = _sub(settlement, "ram:BillingSpecifiedPeriod")
    _date(period, "ram:StartDateTime", document.period_start)
    _date(period, "ram:EndDateTime", document.period_end)
    terms = _sub(settlement, "ram:SpecifiedTradePaymentTerms")
    if document.payment_terms:
        _sub(terms, "ram:Description", document.payment_terms)
    if document.due_on is not None:
        _date(terms, "ram:DueDateDateTime", document.due_on)
    totals = _sub(settlement, "ram:SpecifiedTradeSettlementHeaderMonetarySummation")
    _sub(totals, "ram:LineTotalAmount", amount_text(document.net))
    _sub(totals, "ram:TaxBasisTotalAmount", amount_text(document.net))
    _sub(totals, "ram:TaxTotalAmount", amount_text(document.vat), currencyID=currency)
    _sub(totals, "ram:GrandTotalAmount", amount_text(document.total))
    _sub(totals, "ram:DuePayableAmount", amount_text(document.due))
    if document.preceding_number:
        referenced = _sub(settlement, "ram:InvoiceReferencedDocument")
        _sub(referenced, "ram:IssuerAssignedID", document.preceding_number)
        if document.preceding_issued_on is not None:
            issued = _sub(referenced, "ram:FormattedIssueDateTime")
            _sub(
                issued,
                "qdt:DateTimeString",
                document.preceding_issued_on.strftime("%Y%m%d"),
                format="102",
            )
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
