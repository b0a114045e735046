"""The invoice document: context, HTML and PDF bytes, and where a PDF is served from.

An issued invoice's PDF is rendered once (invoices.tasks.invoice_render_pdf,
after the issuing transaction commits) and served from storage ever after, so
the document a customer received never changes. Drafts and cancelled invoices
render on the fly, watermarked (`Invoice.serves_stored_pdf`).

Reading a PDF never writes: an issued invoice whose stored file is missing
(rendering has not run yet, failed, or storage was restored without media) is
rendered for that answer and not stored; `render_pdfs` or the task stores it.
A live rendering is cached for a few minutes under a key that changes with the
invoice, its account and the seller, so a 500-line draft asked for again and
again is rendered once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import cast

from django.core.cache import cache
from django.http import FileResponse
from django.template.loader import render_to_string

from accounts.models import Seller
from billing.lib.money import ZERO, minor_units, quantize
from billing.lib.pdf import html_to_pdf
from invoices import tax
from invoices.models import CreditNote, Invoice

# How long a live rendering (draft, cancelled, or issued without its file) is reused.
LIVE_PDF_CACHE_SECONDS = 300


def format_amount(amount: Decimal | None, currency: str) -> str:
    """`1234.5` in EUR -> `1,234.50`; JPY shows no decimals, KWD three."""
    if amount is None:
        return ""
    # Rounded half-up first (the money rule); formatting alone would round half-even.
    return f"{quantize(amount, currency):,.{minor_units(currency)}f}"


def format_unit_price(price: Decimal, currency: str) -> str:
    """Unit prices keep their precision (0.0416) but show at least the minor unit (59.00)."""
    places = max(minor_units(currency), -min(cast(int, price.normalize().as_tuple().exponent), 0))
    return f"{price:,.{places}f}"


def format_quantity(quantity: Decimal) -> str:
    normal = quantity.normalize()
    places = -min(cast(int, normal.as_tuple().exponent), 0)
    return f"{quantity:,.{places}f}"


@dataclass(frozen=True)
class PdfLine:
    position: int
    name: str
    description: str
    quantity: str
    unit_price: str
    cost: str
    vat: str = ""  # the line's category and rate, printed when the document mixes them


@dataclass(frozen=True)
class PdfVatRow:
    label: str
    rate: str
    taxable: str
    vat: str
    mention: str = ""


@dataclass(frozen=True)
class CustomerStatus:
    """What the customer's document says of the invoice: never an internal state name."""

    label: str
    css: str


def customer_status(invoice: Invoice) -> CustomerStatus:
    if invoice.state == Invoice.State.CANCELLED:
        return CustomerStatus("Cancelled", "void")
    if not invoice.is_issued:  # open or finalized: not sent to anyone yet
        return CustomerStatus("Draft", "draft")
    if invoice.state == Invoice.State.PAID or invoice.amount_due() <= 0:
        return CustomerStatus("Paid", "paid")
    if invoice.amount_paid > 0 or invoice.amount_credited > 0 or invoice.credit_applied > 0:
        return CustomerStatus("Partly paid", "due")
    return CustomerStatus("Payment due", "due")


def format_iban(iban: str) -> str:
    """An IBAN as printed: groups of four (ES91 2100 0418 ...)."""
    compact = "".join((iban or "").split()).upper()
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


def bank_block(invoice: Invoice, seller: Seller) -> dict | None:
    """The bank transfer details to print, or None.

    Printed only when something is to be paid: an issued invoice with an amount
    due (never a paid or a cancelled one), or a draft with a total (a preview of
    the document the customer will receive). The account is the one of the
    invoice's currency: frozen with the seller at issue, the live one before.
    """
    if invoice.state == Invoice.State.CANCELLED:
        return None
    if invoice.is_issued:
        if invoice.amount_due() <= 0:
            return None
        details = invoice.seller_details or invoice.seller(seller)
    else:
        if invoice.cost <= 0:
            return None
        details = seller.bank_details(invoice.currency)
    if not (details.get("iban") or details.get("bank_name")):
        return None
    return {
        "holder": details.get("bank_account_holder", ""),
        "bank": details.get("bank_name", ""),
        "iban": format_iban(details.get("iban", "")),
        "bic": details.get("bic", ""),
    }


def registration_line(seller: dict) -> str:
    """The seller's registration details as the footer prints them (frozen at issue)."""
    parts = [seller.get("name", "")]
    if seller.get("legal_form"):
        parts.append(seller["legal_form"])
    if seller.get("share_capital"):
        parts.append(f"Share capital {seller['share_capital']}")
    if seller.get("registered_office"):
        parts.append(f"Registered office: {seller['registered_office']}")
    if seller.get("registration_id"):
        parts.append(f"Company registration no. {seller['registration_id']}")
    return " · ".join(part for part in parts if part) if len(parts) > 1 else ""


def _rate_text(category: str, rate: Decimal) -> str:
    return "—" if category == tax.Category.OUTSIDE_SCOPE else f"{rate.normalize():f}%"


def _vat_rows(
    rows: list[tax.VatBreakdown],
    currency: str,
    own_category: str,
    own_mention: str,
    own_reason: str,
) -> dict:
    """The breakdown as printed, one row per category and rate, and the legal mentions
    of its non-standard rows, once each."""
    labels = dict(tax.Category.choices)
    printed, mentions = [], []
    for row in rows:
        mention, _reason = tax.row_mention(row.category, own_category, own_mention, own_reason)
        if mention and mention not in mentions:
            mentions.append(mention)
        printed.append(
            PdfVatRow(
                label=str(labels.get(row.category, row.category)),
                rate=_rate_text(row.category, row.rate),
                taxable=format_amount(row.taxable, currency),
                vat=format_amount(row.vat, currency),
                mention=mention,
            )
        )
    # The exemption reason, when it says more than the mention (an exempt account's).
    reason = own_reason if own_reason not in (own_mention, "Reverse charge", *mentions) else ""
    if own_category not in {row.category for row in rows}:
        reason = ""
    return {"breakdown": printed, "mentions": mentions, "reason": reason}


def tax_preview(invoice: Invoice, seller: Seller) -> str:
    """For a draft of an EU seller: the treatment issuing will apply (its VAT follows then)."""
    if invoice.is_issued or invoice.state == Invoice.State.CANCELLED:
        return ""
    treatment = tax.account_treatment(invoice.account, seller)
    if treatment.kind == tax.Kind.MANUAL:
        return ""
    rate = "" if treatment.rate is None else f" {treatment.rate.normalize():f}%"
    label = tax.Kind(treatment.kind).label
    return f"VAT on issue: {label} (category {treatment.category}{rate})."


def tax_pdf_context(invoice: Invoice, rows: list[tax.VatBreakdown]) -> dict | None:
    """The VAT breakdown as printed: for an issued invoice with its frozen treatment,
    or a draft with lines of their own categories; None otherwise (one VAT row)."""
    if not invoice.tax_category and len(rows) < 2:
        return None
    return _vat_rows(
        rows,
        invoice.currency,
        invoice.vat_category,
        invoice.tax_mention,
        invoice.tax_exemption_reason,
    )


def _line_vat_text(category: str, rate: Decimal) -> str:
    if category == tax.Category.STANDARD:
        return f"{rate.normalize():f}%"
    return category if category == tax.Category.OUTSIDE_SCOPE else f"{category} 0%"


def invoice_pdf_context(invoice: Invoice) -> dict:
    seller = Seller.load()
    # Once issued, the parties are printed exactly as they were frozen at issue.
    seller_block = invoice.seller(seller)
    buyer_block = invoice.buyer()
    logo_uri = _logo_uri(seller)
    watermark = ""
    if invoice.state == Invoice.State.CANCELLED:
        watermark = "CANCELLED"
    elif not invoice.is_issued:
        watermark = "DRAFT"
    payment = invoice.successful_purchase()
    currency = invoice.currency
    items = list(invoice.line_items.all())
    rows = tax.vat_breakdown(
        ((*invoice.line_tax(line.vat_category, line.vat_rate), line.cost) for line in items),
        currency,
    ) or [tax.VatBreakdown(invoice.vat_category, invoice.vat_rate or Decimal(0), ZERO, ZERO)]
    mixed = len(rows) > 1
    lines = [
        PdfLine(
            position=index,
            name=line.name,
            description=line.description,
            quantity=format_quantity(line.quantity),
            unit_price=format_unit_price(line.unit_price, currency),
            cost=format_amount(line.cost, currency),
            vat=_line_vat_text(*invoice.line_tax(line.vat_category, line.vat_rate))
            if mixed
            else "",
        )
        for index, line in enumerate(items, start=1)
    ]
    settlement = None
    if invoice.is_issued and invoice.state != Invoice.State.CANCELLED:
        settlement = {
            "paid": format_amount(invoice.amount_paid, currency),
            "credited": format_amount(invoice.amount_credited, currency)
            if invoice.amount_credited
            else "",
            "credit_applied": format_amount(invoice.credit_applied, currency)
            if invoice.credit_applied
            else "",
            "due": format_amount(invoice.amount_due(), currency),
        }
    return {
        "invoice": invoice,
        "settlement": settlement,
        "lines": lines,
        "seller": seller_block,
        "buyer": buyer_block,
        "logo_uri": logo_uri,
        "footer": seller.invoice_footer,
        "registration": registration_line(seller_block),
        "watermark": watermark,
        "status": customer_status(invoice),
        "bank": bank_block(invoice, seller),
        "payment": payment,
        "subtotal": format_amount(invoice.cost_without_vat, currency),
        "vat": format_amount(invoice.vat_amount, currency),
        "total": format_amount(invoice.cost, currency),
        "vat_rate": None if mixed or not rows[0].rate else rows[0].rate.normalize(),
        "mixed_vat": mixed,
        "tax": tax_pdf_context(invoice, rows),
        "tax_preview": tax_preview(invoice, seller),
    }


def _logo_uri(seller: Seller) -> str:
    if not seller.logo:
        return ""
    try:
        return Path(seller.logo.path).resolve().as_uri()
    except (ValueError, NotImplementedError):
        return ""


def credit_note_pdf_context(note: CreditNote) -> dict:
    """A credit note's document: the invoice's frozen parties, its own lines and totals."""
    seller = Seller.load()
    currency = note.currency
    rows = note.vat_breakdown()
    mixed = len(rows) > 1
    lines = [
        PdfLine(
            position=index,
            name=line.name,
            description="",
            quantity=format_quantity(line.quantity),
            unit_price=format_unit_price(line.unit_price, currency),
            cost=format_amount(line.cost, currency),
            vat=_line_vat_text(*note.line_tax(line)) if mixed else "",
        )
        for index, line in enumerate(note.lines.all(), start=1)
    ]
    seller_block = note.seller_details or note.invoice.seller(seller)

    def amount(value: Decimal) -> str:
        return format_amount(value, currency) if value else ""

    return {
        "note": note,
        "invoice": note.invoice,
        "lines": lines,
        "seller": seller_block,
        "buyer": note.buyer_details or note.invoice.buyer(),
        "logo_uri": _logo_uri(seller),
        "footer": seller.invoice_footer,
        "registration": registration_line(seller_block),
        "subtotal": format_amount(note.cost_without_vat, currency),
        "vat": format_amount(note.vat_amount, currency),
        "total": format_amount(note.cost, currency),
        "vat_rate": None if mixed or not rows[0].rate else rows[0].rate.normalize(),
        "mixed_vat": mixed,
        "tax": _vat_rows(
            rows, currency, note.vat_category, note.tax_mention, note.tax_exemption_reason
        )
        if note.tax_category or mixed
        else None,
        "due_reduced": amount(note.amount_due_reduced),
        "refunded": amount(note.amount_refunded),
        "to_balance": amount(note.amount_to_balance),
    }


def credit_note_pdf_html(note: CreditNote) -> str:
    return render_to_string("invoices/credit_note_pdf.html", credit_note_pdf_context(note))


def credit_note_pdf_bytes(note: CreditNote) -> bytes:
    return html_to_pdf(credit_note_pdf_html(note))


def invoice_pdf_html(invoice: Invoice) -> str:
    return render_to_string("invoices/invoice_pdf.html", invoice_pdf_context(invoice))


def invoice_pdf_bytes(invoice: Invoice) -> bytes:
    """Render the document now (used for drafts, and once per issued invoice)."""
    return html_to_pdf(invoice_pdf_html(invoice))


def invoice_pdf_filename(invoice: Invoice) -> str:
    if invoice.friendly_id:
        return f"invoice-{invoice.friendly_id}.pdf"
    return f"invoice-draft-{invoice.pk}.pdf"


def _stored_pdf(invoice: Invoice):
    """The open stored file of an invoice that serves one, else None."""
    if not invoice.serves_stored_pdf or not invoice.pdf:
        return None
    try:
        return invoice.pdf.open("rb")
    except (FileNotFoundError, OSError):
        return None


def _live_cache_key(invoice: Invoice) -> str:
    seller = Seller.objects.values_list("updated_at", flat=True).first()
    parts = (
        invoice.pk,
        invoice.state,
        invoice.updated_at.isoformat(),
        invoice.account.updated_at.isoformat(),
        seller.isoformat() if seller else "",
    )
    digest = hashlib.sha256(repr(parts).encode()).hexdigest()[:32]
    return f"invoice-pdf:{invoice.pk}:{digest}"


def invoice_pdf_live(invoice: Invoice) -> bytes:
    """A rendering of the invoice as it is now, reused while nothing in it changed."""
    key = _live_cache_key(invoice)
    content = cache.get(key)
    if content is None:
        content = invoice_pdf_bytes(invoice)
        cache.set(key, content, LIVE_PDF_CACHE_SECONDS)
    return content


def invoice_pdf_content(invoice: Invoice) -> bytes:
    """The PDF to hand out: the stored file of an issued invoice, else a live rendering.

    Never stores anything (see the module docstring).
    """
    handle = _stored_pdf(invoice)
    if handle is None:
        return invoice_pdf_live(invoice)
    with handle:
        return handle.read()


def invoice_pdf_response(invoice: Invoice, *, filename: str | None = None) -> FileResponse:
    """The one way a PDF is served (admin, 3scale link): the stored file streamed,
    or a live rendering; inline, never cached by the client."""
    filename = filename or invoice_pdf_filename(invoice)
    handle = _stored_pdf(invoice)
    if handle is not None:
        response = FileResponse(handle, content_type="application/pdf", filename=filename)
    else:
        content = invoice_pdf_live(invoice)
        response = FileResponse(iter([content]), content_type="application/pdf", filename=filename)
        response["Content-Length"] = str(len(content))
    response["Cache-Control"] = "private, no-store"
    return response
