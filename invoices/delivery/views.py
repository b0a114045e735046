"""The hosted invoice page: view, PDF download and the "Pay" form (no login; the
signed token in the path is the credential)."""

from __future__ import annotations

import copy
from decimal import Decimal

from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from billing.lib.money import quantize
from invoices import services
from invoices.delivery.hosted import hosted_invoice_get
from invoices.exceptions import ChargeFailed, InvoiceError
from invoices.gateways import PaymentGateway, TestGateway, get_gateway
from invoices.models import Invoice
from invoices.pdf import invoice_pdf_response


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


def _invoice_or_404(token: str) -> Invoice:
    invoice = hosted_invoice_get(token)
    if invoice is None:
        raise Http404("No such invoice link (it may have been revoked).")
    return invoice


def _test_cards(gateway: PaymentGateway) -> list[str]:
    return list(TestGateway.CARDS) if isinstance(gateway, TestGateway) else []


@require_GET
def hosted_invoice(request: HttpRequest, token: str) -> HttpResponse:
    invoice = _invoice_or_404(token)
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
    }
    response = render(request, "invoices/hosted_invoice.html", context)
    response["Cache-Control"] = "private, no-store"
    response["X-Robots-Tag"] = "noindex"
    return response


@require_GET
def hosted_invoice_pdf(request: HttpRequest, token: str) -> FileResponse:
    return invoice_pdf_response(_invoice_or_404(token))


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
