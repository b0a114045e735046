"""The tables only the services write, next to the invoices: browsable and
searchable, never edited by hand."""

from __future__ import annotations

from django.contrib import admin

from billing.lib.admin import ReadOnlyAdmin
from invoices.models import InvoiceCounter, InvoiceEvent, LineItem, PaymentTransaction


@admin.register(LineItem)
class LineItemAdmin(ReadOnlyAdmin):
    list_display = ("name", "invoice", "quantity", "unit_price", "cost", "type", "source")
    list_filter = ("type",)
    list_select_related = ("invoice",)
    raw_id_fields = ("invoice",)


@admin.register(PaymentTransaction)
class PaymentTransactionAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "invoice",
        "account",
        "action",
        "amount",
        "currency",
        "success",
        "method",
        "reference",
    )
    list_filter = ("success", "action", "method")
    list_select_related = ("invoice", "account")
    search_fields = ("reference",)
    exclude = ("gateway_response",)
    raw_id_fields = ("invoice", "account")


@admin.register(InvoiceEvent)
class InvoiceEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "invoice", "kind", "from_state", "to_state", "actor", "reason")
    list_filter = ("kind",)
    list_select_related = ("invoice",)
    raw_id_fields = ("invoice",)


@admin.register(InvoiceCounter)
class InvoiceCounterAdmin(ReadOnlyAdmin):
    list_display = ("series", "last_number", "updated_at")
