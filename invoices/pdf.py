"""The invoice document: context, HTML and PDF bytes."""

from __future__ import annotations

from pathlib import Path

from django.template.loader import render_to_string

from accounts.models import Seller
from billing.lib.pdf import html_to_pdf
from invoices.models import Invoice
from invoices.services import buyer_details, seller_details


def invoice_pdf_context(invoice: Invoice) -> dict:
    seller = Seller.load()
    if invoice.is_issued and invoice.seller_details:
        seller_block = invoice.seller_details
    else:
        seller_block = seller_details(seller)
    if invoice.is_issued and invoice.buyer_details:
        buyer_block = invoice.buyer_details
    else:
        buyer_block = buyer_details(invoice.account)
    logo_uri = ""
    if seller.logo:
        try:
            logo_uri = Path(seller.logo.path).resolve().as_uri()
        except (ValueError, NotImplementedError):
            logo_uri = ""
    watermark = ""
    if invoice.state == Invoice.State.CANCELLED:
        watermark = "CANCELLED"
    elif not invoice.is_issued:
        watermark = "DRAFT"
    payment = invoice.payment_transactions.filter(success=True, action="purchase").first()
    return {
        "invoice": invoice,
        "lines": list(invoice.line_items.all()),
        "seller": seller_block,
        "buyer": buyer_block,
        "logo_uri": logo_uri,
        "footer": seller.invoice_footer,
        "watermark": watermark,
        "payment": payment,
    }


def invoice_pdf_bytes(invoice: Invoice) -> bytes:
    html = render_to_string("invoices/invoice_pdf.html", invoice_pdf_context(invoice))
    return html_to_pdf(html)
