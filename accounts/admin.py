from django.contrib import admin

from accounts.models import Account, ApiKey, IdempotencyKey, Seller


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ("org_name", "billing_email", "currency", "vat_rate", "state", "created_at")
    list_filter = ("state", "currency")
    search_fields = ("org_name", "billing_email")


@admin.register(Seller)
class SellerAdmin(admin.ModelAdmin):
    list_display = ("name", "vat_id", "email")


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "prefix",
        "scope",
        "account",
        "expires_at",
        "revoked_at",
        "last_used_at",
    )
    list_filter = ("scope",)
    readonly_fields = ("prefix", "last_used_at", "created_at")


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(admin.ModelAdmin):
    list_display = ("key", "api_key", "status", "response_status", "expires_at")
    list_filter = ("status",)
