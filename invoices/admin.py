from django.contrib import admin

from invoices.models import Invoice, InvoiceCounter, InvoiceEvent, LineItem, PaymentTransaction


@admin.register(Invoice)
class InvoiceAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "account",
        "state",
        "period",
        "issued_on",
        "due_on",
        "cost",
        "currency",
    )
    list_filter = ("state", "currency", "creation_type")
    search_fields = ("friendly_id", "account__org_name", "account__billing_email")
    list_select_related = ("account",)
    raw_id_fields = ("account",)


@admin.register(LineItem)
class LineItemAdmin(admin.ModelAdmin):
    list_display = ("name", "invoice", "quantity", "unit_price", "cost", "type")
    raw_id_fields = ("invoice",)


@admin.register(PaymentTransaction)
class PaymentTransactionAdmin(admin.ModelAdmin):
    list_display = ("invoice", "action", "amount", "currency", "success", "method", "created_at")
    list_filter = ("success", "action", "method")
    raw_id_fields = ("invoice", "account")


@admin.register(InvoiceEvent)
class InvoiceEventAdmin(admin.ModelAdmin):
    list_display = ("invoice", "kind", "from_state", "to_state", "actor", "created_at")
    list_filter = ("kind",)
    raw_id_fields = ("invoice",)


@admin.register(InvoiceCounter)
class InvoiceCounterAdmin(admin.ModelAdmin):
    list_display = ("series", "last_number", "updated_at")
