"""Invoices as CSV, one row per invoice, streamed in constant memory.

The admin's "Export CSV" action and `manage.py export_invoices` share these
rows, so finance gets the same file whichever way they ask for it.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Iterator

from django.db.models import Prefetch, QuerySet

from billing.lib.money import quantize
from invoices.models import Invoice, PaymentTransaction

CSV_HEADER = (
    "id",
    "number",
    "state",
    "period",
    "account_id",
    "organisation",
    "billing_email",
    "buyer_country",
    "buyer_vat_id",
    "currency",
    "subtotal",
    "vat_rate",
    "vat_amount",
    "total",
    "issued_on",
    "due_on",
    "paid_at",
    "cancelled_at",
    "created_at",
    "payment_method",
    "payment_reference",
)
CHUNK_SIZE = 2000


class _Echo:
    """A file-like object whose write() hands the line back instead of storing it."""

    def write(self, value: str) -> str:
        return value


def _money(value, currency: str) -> str:
    # Stored with four places; printed to the currency's minor unit, as on the invoice.
    return str(quantize(value, currency))


def _iso(value) -> str:
    """Dates as YYYY-MM-DD, times to the second (a spreadsheet chokes on microseconds)."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        value = value.astimezone(dt.UTC).replace(microsecond=0, tzinfo=None)
        return value.isoformat(sep=" ")
    return value.isoformat()


def _payment(invoice: Invoice) -> PaymentTransaction | None:
    """The purchase that paid the invoice (card or recorded transfer), if any."""
    payments = getattr(invoice, "successful_payments", None)
    if payments is None:
        payments = list(
            invoice.payment_transactions.filter(
                success=True, action=PaymentTransaction.Action.PURCHASE
            ).order_by("-created_at", "-id")
        )
    return payments[0] if payments else None


def invoice_csv_row(invoice: Invoice) -> list[str]:
    account = invoice.account
    # The buyer as frozen at issue; a draft still follows its account.
    buyer = invoice.buyer_details or {}
    country = buyer.get("country", account.country) if buyer else account.country
    vat_id = buyer.get("vat_code", account.vat_code) if buyer else account.vat_code
    payment = _payment(invoice)
    return [
        str(invoice.pk),
        invoice.friendly_id or "",
        invoice.state,
        invoice.period.strftime("%Y-%m"),
        str(invoice.account_id),
        account.org_name,
        account.billing_email,
        country or "",
        vat_id or "",
        invoice.currency,
        _money(invoice.cost_without_vat, invoice.currency),
        str(invoice.vat_rate) if invoice.vat_rate is not None else "",
        _money(invoice.vat_amount, invoice.currency),
        _money(invoice.cost, invoice.currency),
        _iso(invoice.issued_on),
        _iso(invoice.due_on),
        _iso(invoice.paid_at),
        _iso(invoice.cancelled_at),
        _iso(invoice.created_at),
        payment.get_method_display() if payment else "",
        payment.reference if payment else "",
    ]


def invoice_export_queryset(queryset: QuerySet[Invoice]) -> Iterable[Invoice]:
    """Only the columns the CSV needs, read in chunks (a server-side cursor on PostgreSQL)."""
    paying = PaymentTransaction.objects.filter(
        success=True, action=PaymentTransaction.Action.PURCHASE
    ).order_by("-created_at", "-id")
    return (
        queryset.select_related("account")
        # One query per chunk for the payments, not one per invoice.
        .prefetch_related(
            Prefetch("payment_transactions", queryset=paying, to_attr="successful_payments")
        )
        .only(
            "id",
            "friendly_id",
            "state",
            "period",
            "account_id",
            "account__org_name",
            "account__billing_email",
            "account__country",
            "account__vat_code",
            "buyer_details",
            "currency",
            "cost_without_vat",
            "vat_rate",
            "vat_amount",
            "cost",
            "issued_on",
            "due_on",
            "paid_at",
            "cancelled_at",
            "created_at",
        )
        .order_by("id")
        .iterator(chunk_size=CHUNK_SIZE)
    )


def invoice_csv_lines(queryset: QuerySet[Invoice]) -> Iterator[str]:
    """The CSV text, one line at a time (header first)."""
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_HEADER)
    for invoice in invoice_export_queryset(queryset):
        yield writer.writerow(_sanitise(invoice_csv_row(invoice)))


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _sanitise(row: list[str]) -> list[str]:
    """Neutralise spreadsheet formulas typed into free-text fields (CSV injection)."""
    return ["'" + cell if cell.startswith(_FORMULA_STARTS) else cell for cell in row]
