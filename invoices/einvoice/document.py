"""The plain values an e-invoice is made of, read from an issued invoice's frozen data."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal

from billing.lib.money import quantize
from invoices import tax
from invoices.models import CreditNote, Invoice

INVOICE = "380"  # UNTDID 1001: commercial invoice
CREDIT_NOTE = "381"  # UNTDID 1001: credit note
# UNTDID 4461 payment means: SEPA credit transfer for euros, a credit transfer otherwise.
SEPA_CREDIT_TRANSFER = "58"
CREDIT_TRANSFER = "30"
# VATEX codes for the zero-rated categories (CEF's VAT exemption reason code list).
EXEMPTION_CODES: dict[str, str] = {
    tax.Category.REVERSE_CHARGE: "VATEX-EU-AE",
    tax.Category.OUTSIDE_SCOPE: "VATEX-EU-O",
    tax.Category.EXPORT: "VATEX-EU-G",
    tax.Category.INTRA_COMMUNITY: "VATEX-EU-IC",
}
# Categories whose breakdown carries no exemption reason (BR-S-10, BR-Z-10).
_NO_EXEMPTION_REASON = frozenset({tax.Category.STANDARD, tax.Category.ZERO_RATED})
UNIT_ONE = "C62"  # UN/ECE Recommendation 20: "one"


class EInvoiceUnavailable(Exception):
    """The document can't be an e-invoice (a draft, or parties without country codes)."""


@dataclass(frozen=True)
class Party:
    name: str
    address_line1: str
    address_line2: str
    city: str
    zip: str
    state: str
    country_code: str
    vat_id: str = ""  # BT-31 / BT-48
    identifier: str = ""  # BT-29 / BT-46
    email: str = ""
    registration_id: str = ""  # BT-30: the seller's legal registration id
    legal_info: str = ""  # BT-33: legal form, share capital


@dataclass(frozen=True)
class Line:
    position: int
    name: str
    description: str
    quantity: Decimal
    unit_price: Decimal
    net: Decimal
    category: str
    rate: Decimal | None  # None: the category takes no rate (O)


@dataclass(frozen=True)
class TaxRow:
    category: str
    rate: Decimal | None
    taxable: Decimal
    vat: Decimal
    exemption_reason: str
    exemption_code: str


@dataclass(frozen=True)
class PaymentMeans:
    code: str
    iban: str
    bic: str
    account_name: str


@dataclass(frozen=True)
class EInvoiceDocument:
    number: str
    type_code: str
    issued_on: dt.date
    due_on: dt.date | None  # None for a credit note: nothing falls due
    period_start: dt.date
    period_end: dt.date
    currency: str
    seller: Party
    buyer: Party
    lines: list[Line]
    breakdown: list[TaxRow]
    net: Decimal
    vat: Decimal
    total: Decimal
    due: Decimal
    notes: list[str] = field(default_factory=list)
    payment: PaymentMeans | None = None
    payment_terms: str = ""
    # A credit note's invoice (BG-3): its number and issue date.
    preceding_number: str = ""
    preceding_issued_on: dt.date | None = None
    # The deliver-to country (BT-80), which an intra-Community supply (K) requires.
    deliver_to_country: str = ""

    @property
    def is_credit_note(self) -> bool:
        return self.type_code == CREDIT_NOTE


def _party(
    details: dict, country_code: str, vat_id: str, *, show_vat_id: bool, identified: bool
) -> Party:
    """A party as frozen at issue; `identified`: its VAT id, if hidden, becomes its identifier."""
    name = details.get("name") or details.get("org_name") or ""
    legal_info = ", ".join(
        part
        for part in (
            details.get("legal_form", ""),
            f"share capital {details['share_capital']}" if details.get("share_capital") else "",
            f"registered office {details['registered_office']}"
            if details.get("registered_office")
            else "",
        )
        if part
    )
    return Party(
        name=name,
        address_line1=details.get("address_line1", ""),
        address_line2=details.get("address_line2", ""),
        city=details.get("city", ""),
        zip=details.get("zip", ""),
        state=details.get("state", ""),
        country_code=country_code,
        vat_id=vat_id if show_vat_id else "",
        identifier="" if show_vat_id or not identified else vat_id,
        email=details.get("email", ""),
        registration_id=details.get("registration_id", ""),
        legal_info=legal_info,
    )


def _require_country_codes(invoice: Invoice) -> None:
    if not (invoice.seller_country_code and invoice.buyer_country_code):
        raise EInvoiceUnavailable(
            "The e-invoice needs the seller's and the buyer's country codes, "
            "frozen when the invoice is issued."
        )


def _parties(
    seller_details: dict, buyer_details: dict, invoice: Invoice, categories: set[str]
) -> tuple[Party, Party]:
    # Category O forbids every VAT id (BR-O-2): the seller is then identified
    # by its number as a plain seller identifier (BT-29), which BR-CO-26 asks for.
    show_vat_ids = tax.Category.OUTSIDE_SCOPE not in categories
    seller = _party(
        seller_details,
        invoice.seller_country_code,
        seller_details.get("vat_id", ""),
        show_vat_id=show_vat_ids,
        identified=True,
    )
    buyer = _party(
        buyer_details,
        invoice.buyer_country_code,
        buyer_details.get("vat_code", ""),
        show_vat_id=show_vat_ids,
        identified=False,
    )
    return seller, buyer


def einvoice_document(invoice: Invoice) -> EInvoiceDocument:
    if not invoice.is_issued or not invoice.friendly_id:
        raise EInvoiceUnavailable("A draft is not an invoice yet: issue it first.")
    _require_country_codes(invoice)
    # An issued invoice has both dates.
    assert invoice.issued_on is not None and invoice.due_on is not None
    currency = invoice.currency
    rows = invoice.vat_breakdown()
    categories = {row.category for row in rows}
    seller, buyer = _parties(invoice.seller_details, invoice.buyer_details, invoice, categories)
    lines = [
        _line(index, line.name, line.description, line.quantity, line.unit_price, line.cost,
              invoice.line_tax(line.vat_category, line.vat_rate), currency)
        for index, line in enumerate(invoice.line_items.all(), start=1)
    ]  # fmt: skip
    breakdown, mentions = _breakdown(
        rows, invoice.vat_category, invoice.tax_mention, invoice.tax_exemption_reason, currency
    )
    details = invoice.seller_details
    iban = "".join((details.get("iban") or "").split()).upper()
    payment = None
    if iban:
        payment = PaymentMeans(
            code=SEPA_CREDIT_TRANSFER if currency == "EUR" else CREDIT_TRANSFER,
            iban=iban,
            bic="".join((details.get("bic") or "").split()).upper(),
            account_name=details.get("bank_account_holder") or details.get("name") or "",
        )
    total = quantize(invoice.cost, currency)
    return EInvoiceDocument(
        number=invoice.friendly_id,
        type_code=INVOICE,
        issued_on=invoice.issued_on,
        due_on=invoice.due_on,
        period_start=invoice.period,
        period_end=invoice.period_end,
        currency=currency,
        seller=seller,
        buyer=buyer,
        lines=lines,
        breakdown=breakdown,
        net=quantize(invoice.cost_without_vat, currency),
        vat=quantize(invoice.vat_amount, currency),
        total=total,
        due=total,
        notes=mentions,
        payment=payment,
        payment_terms=f"Payment due by {invoice.due_on.isoformat()}",
        deliver_to_country=_deliver_to(categories, invoice),
    )


def credit_note_document(note: CreditNote) -> EInvoiceDocument:
    """A credit note (381) from its frozen data: its lines, the invoice's rate,
    treatment and parties, and a reference to the invoice it credits."""
    invoice = note.invoice
    if not invoice.friendly_id or invoice.issued_on is None:
        raise EInvoiceUnavailable("The credited invoice was never issued.")
    _require_country_codes(invoice)
    currency = note.currency
    rows = note.vat_breakdown()
    categories = {row.category for row in rows}
    seller, buyer = _parties(note.seller_details, note.buyer_details, invoice, categories)
    lines = [
        _line(index, line.name,
              line.line_item.description if line.line_item is not None else "",
              line.quantity, line.unit_price, line.cost, note.line_tax(line), currency)
        for index, line in enumerate(note.lines.select_related("line_item"), start=1)
    ]  # fmt: skip
    breakdown, mentions = _breakdown(
        rows, note.vat_category, note.tax_mention, note.tax_exemption_reason, currency
    )
    net = quantize(note.cost_without_vat, currency)
    vat = quantize(note.vat_amount, currency)
    total = quantize(note.cost, currency)
    notes = [note.reason, *mentions]
    return EInvoiceDocument(
        number=note.number,
        type_code=CREDIT_NOTE,
        issued_on=note.issued_on,
        due_on=None,
        period_start=invoice.period,
        period_end=invoice.period_end,
        currency=currency,
        seller=seller,
        buyer=buyer,
        lines=lines,
        breakdown=breakdown,
        net=net,
        vat=vat,
        total=total,
        due=total,
        notes=notes,
        payment_terms=f"Credit on invoice {invoice.friendly_id}",
        preceding_number=invoice.friendly_id,
        preceding_issued_on=invoice.issued_on,
        deliver_to_country=_deliver_to(categories, invoice),
    )


def _line(
    position: int,
    name: str,
    description: str,
    quantity: Decimal,
    unit_price: Decimal,
    cost: Decimal,
    line_tax: tuple[str, Decimal],
    currency: str,
) -> Line:
    category, rate = line_tax
    return Line(
        position=position,
        name=name,
        description=description,
        quantity=quantity,
        unit_price=unit_price,
        net=quantize(cost, currency),
        category=category,
        # An O line has no rate (BR-O-5).
        rate=None if category == tax.Category.OUTSIDE_SCOPE else rate,
    )


def _breakdown(
    rows: list[tax.VatBreakdown],
    own_category: str,
    own_mention: str,
    own_reason: str,
    currency: str,
) -> tuple[list[TaxRow], list[str]]:
    """The document's VAT breakdown (BG-23) and its notes: each non-standard row's
    legal mention, once."""
    breakdown, mentions = [], []
    for row in rows:
        mention, reason = tax.row_mention(row.category, own_category, own_mention, own_reason)
        if mention and mention not in mentions:
            mentions.append(mention)
        breakdown.append(
            TaxRow(
                category=row.category,
                rate=None if row.category == tax.Category.OUTSIDE_SCOPE else row.rate,
                taxable=quantize(row.taxable, currency),
                vat=quantize(row.vat, currency),
                exemption_reason="" if row.category in _NO_EXEMPTION_REASON else reason,
                exemption_code=EXEMPTION_CODES.get(row.category, ""),
            )
        )
    return breakdown, mentions


def _deliver_to(categories: set[str], invoice: Invoice) -> str:
    """The buyer's country as the deliver-to country, which K requires (BR-IC-12)."""
    if tax.Category.INTRA_COMMUNITY in categories:
        return invoice.buyer_country_code
    return ""


# Characters XML 1.0 can't carry (control characters), which lxml refuses.
_NOT_XML = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: str) -> str:
    """User text as XML can carry it: control characters dropped, the rest escaped by lxml."""
    return _NOT_XML.sub("", value)


def decimal_text(value: Decimal) -> str:
    """A plain decimal without exponent or trailing zeros (25.5, 0.0123, 3)."""
    return format(value.normalize(), "f")


def amount_text(value: Decimal) -> str:
    """An amount already rounded to its currency's minor unit (149.97)."""
    return format(value, "f")
