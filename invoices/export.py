"""Invoices as CSV, one row per invoice, streamed in constant memory.

The admin's "Export CSV" action and `manage.py export_invoices` share these
rows, so finance gets the same file whichever way they ask for it.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator

from django.db.models import QuerySet

from billing.lib.money import quantize
from invoices.models import Invoice

CSV_HEADER = (
    "id",
    "number",
    "state",
    "period",
    "account_id",
    "organisation",
    "billing_email",
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
    return value.isoformat() if value is not None else ""


def invoice_csv_row(invoice: Invoice) -> list[str]:
    account = invoice.account
    return [
        str(invoice.pk),
        invoice.friendly_id or "",
        invoice.state,
        invoice.period.strftime("%Y-%m"),
        str(invoice.account_id),
        account.org_name,
        account.billing_email,
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
    ]


def invoice_export_queryset(queryset: QuerySet[Invoice]) -> Iterable[Invoice]:
    """Only the columns the CSV needs, read in chunks (a server-side cursor on PostgreSQL)."""
    return (
        queryset.select_related("account")
        .only(
            "id",
            "friendly_id",
            "state",
            "period",
            "account_id",
            "account__org_name",
            "account__billing_email",
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
