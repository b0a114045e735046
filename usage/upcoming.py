"""The upcoming invoice: what the monthly billing run would bill an account for a month.

A read: it rates the month as the run does (usage.selectors.rate_account_month
for plans and metered usage, one line per service and region for pre-rated
usage) and shapes the answer as the /v1 invoice representation, saving nothing.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from rest_framework import serializers

from accounts.models import Account
from billing.lib.money import ZERO, quantize
from invoices.api.v1.serializers import InvoiceSerializer, _customer, _line_item
from invoices.models import Invoice
from invoices.selectors import background_invoice_preview
from invoices.services import LineSpec, invoice_totals
from usage import selectors

# Sources of the lines the billing run writes; every other line of the
# month's background invoice (added by staff) stays as it is.
RUN_SOURCE_PREFIXES = ("usage:", "plan:", "setup:", "charge:")


def upcoming_lines(account: Account, month: dt.date) -> list[LineSpec]:
    """The lines the run computes for the month: plan lines, then pre-rated usage."""
    return selectors.rate_account_month(account, month) + selectors.prerated_usage_lines(
        account.pk, month
    )


def upcoming_invoice(account: Account, month: dt.date, *, now: dt.datetime) -> dict[str, Any]:
    """The month's background invoice as the run would leave it, in the /v1 representation."""
    currency = account.currency
    preview = background_invoice_preview(
        account=account,
        period=month,
        lines=upcoming_lines(account, month),
        replaced_prefixes=RUN_SOURCE_PREFIXES,
        now=now,
    )
    if preview is None:
        # Issued: the run leaves it as it is.
        issued = Invoice.objects.get(
            account=account,
            period=month,
            creation_type=Invoice.CreationType.BACKGROUND,
            state__in=Invoice.ISSUED_STATES,
        )
        return InvoiceSerializer(issued).data
    invoice, lines = preview
    subtotal, tax, total = invoice_totals(
        sum((line.cost for line in lines), ZERO), vat_rate=account.vat_rate, currency=currency
    )
    timestamp = serializers.DateTimeField().to_representation
    return {
        "id": invoice.pk,
        "customer_id": account.pk,
        "amount": quantize(total, currency),
        "date": invoice.created_at.date().isoformat(),
        "due_date": None,
        "number": invoice.friendly_id,
        "period": month.strftime("%Y-%m"),
        "currency": currency,
        "subtotal": quantize(subtotal, currency),
        "tax": quantize(tax, currency),
        "total": quantize(total, currency),
        "status": invoice.state,
        "line_items": [_line_item(line, currency) for line in lines],
        "customer": _customer(invoice),
        "payment": None,
        "created_at": timestamp(invoice.created_at),
        "updated_at": timestamp(invoice.updated_at),
    }
