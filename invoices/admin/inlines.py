"""What the invoice page shows under the invoice: its lines (editable while the
invoice is) and its payments (read-only). The timeline is a field of the page
(`InvoiceAdmin.timeline`), sentences rather than rows."""

from __future__ import annotations

from django.contrib import admin

from billing.lib.admin import ReadOnlyAdminMixin
from invoices.admin.display import plain_number, unit_price
from invoices.admin.forms import LineItemForm
from invoices.models import CreditNote, Invoice, LineItem, PaymentTransaction
from invoices.pdf import format_amount


class LineItemInline(admin.TabularInline):
    model = LineItem
    form = LineItemForm
    fields = ("name", "description", "quantity", "unit_price", "type", "line_cost")
    # An issued invoice's lines, as printed: no storage padding on the numbers.
    frozen_fields = ("name", "description", "line_quantity", "line_unit_price", "type", "line_cost")
    readonly_fields = ("line_cost",)
    extra = 0

    @admin.display(description="cost")
    def line_cost(self, line: LineItem) -> str:
        if line.pk is None:
            return "—"
        return format_amount(line.cost, line.invoice.currency)

    @admin.display(description="quantity")
    def line_quantity(self, line: LineItem) -> str:
        return plain_number(line.quantity)

    @admin.display(description="unit price")
    def line_unit_price(self, line: LineItem) -> str:
        return unit_price(line.unit_price, line.invoice.currency)

    def get_fields(self, request, obj=None):
        return self.fields if self._editable(obj) else self.frozen_fields

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if self._editable(obj) else self.frozen_fields

    def _editable(self, obj: Invoice | None) -> bool:
        return obj is None or obj.is_editable

    def has_add_permission(self, request, obj=None) -> bool:
        return self._editable(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return self._editable(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        # Removing a line is a change of the invoice, not a delete permission.
        return self._editable(obj) and self.has_change_permission(request, obj)

    def get_extra(self, request, obj=None, **kwargs) -> int:
        return 1 if self._editable(obj) and obj is not None else 0


class ReadOnlyInline(ReadOnlyAdminMixin, admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False


class PaymentTransactionInline(ReadOnlyInline):
    model = PaymentTransaction
    fields = (
        "created_at",
        "action",
        "paid_amount",
        "currency",
        "success",
        "method",
        "reference",
        "message",
        "card",
    )
    readonly_fields = fields

    verbose_name = "payment"
    verbose_name_plural = "payments"

    @admin.display(description="amount")
    def paid_amount(self, payment: PaymentTransaction) -> str:
        return format_amount(payment.amount, payment.currency)

    @admin.display(description="card")
    def card(self, payment: PaymentTransaction) -> str:
        if not payment.card_last4:
            return "—"
        return f"{payment.card_brand} •••• {payment.card_last4}"


class CreditNoteInline(ReadOnlyInline):
    model = CreditNote
    fields = (
        "number",
        "issued_on",
        "reason",
        "credited",
        "amount_due_reduced",
        "amount_refunded",
        "amount_to_balance",
        "actor",
    )
    readonly_fields = fields

    @admin.display(description="total")
    def credited(self, note: CreditNote) -> str:
        return f"{format_amount(note.cost, note.currency)} {note.currency}"
