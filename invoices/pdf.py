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
from billing.lib.money import minor_units, quantize
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


@dataclass(frozen=True)
class PdfVatRow:
    label: str
    rate: str
    taxable: str
    vat: str


def tax_preview(invoice: Invoice, seller: Seller) -> str:
    """For a draft of an EU seller: the treatment issuing will apply (its VAT follows then)."""
    if invoice.is_issued:
        return ""
    treatment = tax.account_treatment(invoice.account, seller)
    if treatment.kind == tax.Kind.MANUAL:
        return ""
    rate = "" if treatment.rate is None else f" {treatment.rate.normalize():f}%"
    label = tax.Kind(treatment.kind).label
    return f"VAT on issue: {label} (category {treatment.category}{rate})."


def tax_pdf_context(invoice: Invoice) -> dict | None:
    """The frozen VAT treatment as printed: None for invoices issued without one."""
    if not invoice.tax_category:
        return None
    currency = invoice.currency
    labels = dict(tax.Category.choices)
    rows = [
        PdfVatRow(
            label=str(labels.get(row.category, row.category)),
            rate="—"
            if row.category == tax.Category.OUTSIDE_SCOPE
            else f"{row.rate.normalize():f}%",
            taxable=format_amount(row.taxable, currency),
            vat=format_amount(row.vat, currency),
        )
        for row in invoice.vat_breakdown()
    ]
    mention = invoice.tax_mention
    reason = invoice.tax_exemption_reason
    return {
        "breakdown": rows,
        "mention": mention,
        # Printed once: the mention often is the reason.
        "reason": "" if reason in (mention, "Reverse charge") else reason,
    }


def invoice_pdf_context(invoice: Invoice) -> dict:
    seller = Seller.load()
    # Once issued, the parties are printed exactly as they were frozen at issue.
    seller_block = invoice.seller(seller)
    buyer_block = invoice.buyer()
    logo_uri = ""
    if seller.logo:
        try:
            logo_uri = Path(seller.logo.path).resolve().as_uri()
        except (ValueError, NotImplementedError):
            logo_uri = ""  # a storage without local paths: the invoice goes without a logo
    watermark = ""
    if invoice.state == Invoice.State.CANCELLED:
        watermark = "CANCELLED"
    elif not invoice.is_issued:
        watermark = "DRAFT"
    payment = invoice.successful_purchase()
    currency = invoice.currency
    lines = [
        PdfLine(
            position=index,
            name=line.name,
            description=line.description,
            quantity=format_quantity(line.quantity),
            unit_price=format_unit_price(line.unit_price, currency),
            cost=format_amount(line.cost, currency),
        )
        for index, line in enumerate(invoice.line_items.all(), start=1)
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
        "watermark": watermark,
        "payment": payment,
        "subtotal": format_amount(invoice.cost_without_vat, currency),
        "vat": format_amount(invoice.vat_amount, currency),
        "total": format_amount(invoice.cost, currency),
        "vat_rate": invoice.vat_rate.normalize() if invoice.vat_rate else None,
        "tax": tax_pdf_context(invoice),
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
    lines = [
        PdfLine(
            position=index,
            name=line.name,
            description="",
            quantity=format_quantity(line.quantity),
            unit_price=format_unit_price(line.unit_price, currency),
            cost=format_amount(line.cost, currency),
        )
        for index, line in enumerate(note.lines.all(), start=1)
    ]

    def amount(value: Decimal) -> str:
        return format_amount(value, currency) if value else ""

    return {
        "note": note,
        "invoice": note.invoice,
        "lines": lines,
        "seller": note.seller_details or note.invoice.seller(seller),
        "buyer": note.buyer_details or note.invoice.buyer(),
        "logo_uri": _logo_uri(seller),
        "footer": seller.invoice_footer,
        "subtotal": format_amount(note.cost_without_vat, currency),
        "vat": format_amount(note.vat_amount, currency),
        "total": format_amount(note.cost, currency),
        "vat_rate": note.vat_rate.normalize() if note.vat_rate else None,
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
