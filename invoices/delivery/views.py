"""The hosted pages: an invoice or a credit note as a web page, its PDF (Factur-X when
it can be an e-invoice) and its UBL and CII e-invoices, and the invoice's "Pay" form
(no login; the signed token in the path is the credential)."""

from __future__ import annotations

import copy
from decimal import Decimal

from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from billing.lib.money import quantize
from invoices import services
from invoices.delivery.hosted import Document, hosted_document_get, hosted_invoice_get, hosted_url
from invoices.einvoice import (
    EInvoiceUnavailable,
    credit_note_document,
    credit_note_xml,
    einvoice_document,
    einvoice_xml,
)
from invoices.exceptions import ChargeFailed, InvoiceError
from invoices.gateways import PaymentGateway, TestGateway, get_gateway
from invoices.models import CreditNote, Invoice
from invoices.pdf import (
    format_amount,
    format_quantity,
    format_unit_price,
    invoice_pdf_response,
)

# The e-invoice syntaxes offered for download (those of GET /v1/invoices/{id}/einvoice).
EINVOICE_SYNTAXES = {"ubl": "UBL 2.1 (Peppol BIS Billing 3.0)", "cii": "CII (UN/CEFACT D16B)"}


class _ChosenTestCard:
    """The test gateway, charging the card token picked on the page instead of the
    one on file (the page's test-mode card select)."""

    def __init__(self, gateway: TestGateway, card_token: str) -> None:
        self.gateway = gateway
        self.card_token = card_token

    def purchase(self, *, account, amount: Decimal, currency: str, description: str):
        # A copy: the card on file stays as it is.
        chosen = copy.copy(account)
        chosen.card_token = self.card_token
        return self.gateway.purchase(
            account=chosen, amount=amount, currency=currency, description=description
        )

    def refund(self, *, account, amount: Decimal, currency: str, reference: str, description: str):
        return self.gateway.refund(
            account=account,
            amount=amount,
            currency=currency,
            reference=reference,
            description=description,
        )


def _document_or_404(token: str) -> Document:
    document = hosted_document_get(token)
    if document is None:
        raise Http404("No such link (it may have been revoked).")
    return document


def _invoice_or_404(token: str) -> Invoice:
    invoice = hosted_invoice_get(token)
    if invoice is None:
        raise Http404("No such invoice link (it may have been revoked).")
    return invoice


def _test_cards(gateway: PaymentGateway) -> list[str]:
    return list(TestGateway.CARDS) if isinstance(gateway, TestGateway) else []


def _einvoice_available(document: Document) -> bool:
    """Whether the document can be an e-invoice (issued with both parties' country
    codes); only then are its XML downloads offered and its PDF Factur-X."""
    if isinstance(document, Invoice) and document.state not in Invoice.ISSUED_STATES:
        return False  # cancelled: no longer an invoice to pay or to book
    try:
        if isinstance(document, CreditNote):
            credit_note_document(document)
        else:
            einvoice_document(document)
    except EInvoiceUnavailable:
        return False
    return True


def _private(response: HttpResponseBase) -> HttpResponseBase:
    response["Cache-Control"] = "private, no-store"
    response["X-Robots-Tag"] = "noindex"
    return response


@require_GET
def hosted_invoice(request: HttpRequest, token: str) -> HttpResponseBase:
    document = _document_or_404(token)
    if isinstance(document, CreditNote):
        return _credit_note_page(request, token, document)
    invoice = document
    outstanding = invoice.state in Invoice.OUTSTANDING_STATES
    context = {
        "token": token,
        "invoice": invoice,
        "seller": invoice.seller(),
        "buyer": invoice.buyer(),
        "lines": invoice.line_items.all(),
        "subtotal": quantize(invoice.cost_without_vat, invoice.currency),
        "vat": quantize(invoice.vat_amount, invoice.currency),
        "total": quantize(invoice.cost, invoice.currency),
        "amount_due": quantize(invoice.cost, invoice.currency) if outstanding else Decimal("0"),
        "payable": outstanding and not invoice.account.is_deleted,
        "test_cards": _test_cards(get_gateway()),
        "outcome": request.GET.get("outcome", ""),
        "einvoice": _einvoice_available(invoice),
        "syntaxes": EINVOICE_SYNTAXES,
    }
    return _private(render(request, "invoices/hosted_invoice.html", context))


def _credit_note_page(request: HttpRequest, token: str, note: CreditNote) -> HttpResponseBase:
    invoice = note.invoice
    context = {
        "token": token,
        "note": note,
        "invoice": invoice,
        # The credited invoice's own page, while its link opens (it is issued).
        "invoice_url": hosted_url(invoice) if invoice.is_issued else "",
        "seller": note.seller_details,
        "buyer": note.buyer_details,
        "lines": [
            {
                "name": line.name,
                "quantity": format_quantity(line.quantity),
                "unit_price": format_unit_price(line.unit_price, note.currency),
                "cost": format_amount(line.cost, note.currency),
            }
            for line in note.lines.all()
        ],
        "subtotal": quantize(note.cost_without_vat, note.currency),
        "vat": quantize(note.vat_amount, note.currency),
        "total": quantize(note.cost, note.currency),
        "due_reduced": quantize(note.amount_due_reduced, note.currency),
        "refunded": quantize(note.amount_refunded, note.currency),
        "to_balance": quantize(note.amount_to_balance, note.currency),
        "einvoice": _einvoice_available(note),
        "syntaxes": EINVOICE_SYNTAXES,
    }
    return _private(render(request, "invoices/hosted_credit_note.html", context))


def _stored_pdf(document: Document) -> FileResponse:
    """The document's stored PDF, rendered and stored now when it is not yet (the
    render task's own work, done early): Factur-X when it can be an e-invoice."""
    from invoices.tasks import credit_note_render_pdf, invoice_render_pdf

    if isinstance(document, CreditNote):
        if not document.pdf:
            credit_note_render_pdf(document.pk)
            document.refresh_from_db(fields=["pdf"])
        filename = f"credit-note-{document.number}.pdf"
        try:
            handle = document.pdf.open("rb")
        except OSError:  # the stored file is gone: render it again, not stored
            from invoices.einvoice.facturx import credit_note_stored_pdf_bytes

            content = credit_note_stored_pdf_bytes(document)
            return FileResponse(iter([content]), content_type="application/pdf", filename=filename)
        return FileResponse(handle, content_type="application/pdf", filename=filename)
    if not document.pdf and document.serves_stored_pdf:
        invoice_render_pdf(document.pk)
        document.refresh_from_db(fields=["pdf"])
    return invoice_pdf_response(document)


@require_GET
def hosted_invoice_pdf(request: HttpRequest, token: str) -> HttpResponseBase:
    return _private(_stored_pdf(_document_or_404(token)))


@require_GET
def hosted_einvoice(request: HttpRequest, token: str, syntax: str) -> HttpResponseBase:
    """The document as UBL or CII XML, built by the functions behind
    GET /v1/invoices/{id}/einvoice, as a download."""
    document = _document_or_404(token)
    if syntax not in EINVOICE_SYNTAXES or not _einvoice_available(document):
        raise Http404("This document has no e-invoice in that syntax.")
    try:
        if isinstance(document, CreditNote):
            xml = credit_note_xml(document, syntax)
            filename = f"credit-note-{document.number}-{syntax}.xml"
        else:
            xml = einvoice_xml(document, syntax)
            filename = f"invoice-{document.friendly_id}-{syntax}.xml"
    except EInvoiceUnavailable:
        raise Http404("This document has no e-invoice.") from None
    response = HttpResponse(xml, content_type="application/xml; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return _private(response)


@require_POST
def hosted_invoice_pay(request: HttpRequest, token: str) -> HttpResponse:
    invoice = _invoice_or_404(token)
    gateway = get_gateway()
    card = request.POST.get("card_token", "")
    if isinstance(gateway, TestGateway) and card:
        if card not in TestGateway.CARDS:
            return redirect(f"{request.path.rsplit('/', 1)[0]}?outcome=declined")
        gateway = _ChosenTestCard(gateway, card)
    page = request.path.rsplit("/", 1)[0]
    try:
        services.invoice_charge(invoice=invoice, actor="customer:hosted-page", gateway=gateway)
    except ChargeFailed:
        return redirect(f"{page}?outcome=declined")
    except InvoiceError:
        return redirect(f"{page}?outcome=not_payable")
    return redirect(f"{page}?outcome=paid")
