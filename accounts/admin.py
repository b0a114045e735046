"""Accounts, the seller profile and API keys in the finance workspace.

Writes go through accounts.services: deleting an account is a soft delete
(invoices, payments and usage stay; its API keys stop working), and an API
key's secret is shown once, on the page that follows its creation, and never
stored.
"""

from __future__ import annotations

import re

from django import forms
from django.contrib import admin
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from accounts.models import Account, ApiKey, IdempotencyKey, Seller, SellerBankAccount
from accounts.services import (
    account_create,
    account_soft_delete,
    account_update,
    api_key_create,
    api_key_revoke,
)
from billing.lib.admin import ReadOnlyAdminMixin, service_action
from billing.lib.paging import EstimatedCountPaginator

# 13 to 19 digits, with or without spaces or dashes: what a pasted card number looks like.
_CARD_NUMBER_RE = re.compile(r"^(?:\d[ -]?){13,19}$")
# The postal address, in the order it is printed, of an account and of the seller.
ADDRESS_FIELDS = ("address_line1", "address_line2", "city", "address_state", "zip", "country")


def _counted_link(url: str, count: int, noun: str) -> str:
    return format_html('<a href="{}">{} {}{}</a>', url, count, noun, "" if count == 1 else "s")


class AccountForm(forms.ModelForm):
    class Meta:
        model = Account
        exclude = ("state", "deleted_at")

    def clean_card_token(self):
        token = (self.cleaned_data.get("card_token") or "").strip()
        if _CARD_NUMBER_RE.match(token):
            raise forms.ValidationError(
                "This looks like a card number. Enter the payment gateway's token; "
                "card numbers are never stored here."
            )
        return token


class ApiKeyInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = ApiKey
    fields = ("name", "prefix", "scope", "expires_at", "revoked_at", "last_used_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    verbose_name_plural = "API keys limited to this account"


class UsedCurrencyFilter(admin.SimpleListFilter):
    """The currencies accounts bill in, not every currency an account could have."""

    title = "currency"
    parameter_name = "currency__exact"

    def lookups(self, request, model_admin):
        codes = Account.objects.order_by("currency").values_list("currency", flat=True)
        return [(code, code) for code in codes.distinct()]

    def queryset(self, request, queryset):
        return queryset.filter(currency=self.value()) if self.value() else queryset


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    form = AccountForm
    # Few, short columns: the list fits a 1,280 px window next to the sidebar and
    # the filters, the card column included.
    list_display = (
        "org_name",
        "billing_email",
        "country",
        "currency",
        "terms",
        "card_short",
        "state",
    )
    list_filter = ("state", UsedCurrencyFilter, "payment_method", "tax_exempt")
    search_fields = ("org_name", "billing_email", "vat_code")
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = EstimatedCountPaginator
    inlines = (ApiKeyInline,)
    actions = ("soft_delete_accounts",)
    readonly_fields = (
        "state",
        "deleted_at",
        "card",
        "invoices_link",
        "usage_link",
        "api_key_link",
        "created_at",
        "updated_at",
    )
    fieldsets = (
        (None, {"fields": ("org_name", "billing_email", "phone", "state", "deleted_at")}),
        ("Billing address", {"fields": ADDRESS_FIELDS}),
        (
            "Tax and terms",
            {
                "fields": (
                    "country_code",
                    "is_business",
                    "vat_code",
                    "vat_rate",
                    "tax_exempt",
                    "tax_exempt_reason",
                    "currency",
                    "payment_terms_days",
                )
            },
        ),
        (
            "Payment method",
            {
                "fields": (
                    "payment_method",
                    "card",
                    "card_token",
                    "card_brand",
                    "card_last4",
                    "card_exp_month",
                    "card_exp_year",
                ),
                "description": "The card is held by the payment gateway; only its token "
                "and what is printed on receipts (brand, last four digits, expiry) are kept.",
            },
        ),
        ("Activity", {"fields": ("invoices_link", "usage_link", "api_key_link")}),
        ("Record", {"fields": ("created_at", "updated_at")}),
    )

    @admin.display(description="terms")
    def terms(self, account: Account) -> str:
        vat = f", VAT {account.vat_rate.normalize():f}%" if account.vat_rate else ""
        return f"{account.payment_terms_days} days{vat}"

    @admin.display(description="card")
    def card_short(self, account: Account) -> str:
        if not account.card_last4:
            return "—"
        expiry = ""
        if account.card_exp_month and account.card_exp_year:
            expiry = f"exp {account.card_exp_month:02d}/{account.card_exp_year}"
        # Two short lines rather than one long one: the column stays narrow.
        return format_html(
            '<span style="white-space:nowrap">{} •••• {}</span><br><small>{}</small>',
            account.card_brand or "Card",
            account.card_last4,
            expiry,
        )

    @admin.display(description="card")
    def card(self, account: Account) -> str:
        if not account.card_last4:
            return "—"
        expiry = ""
        if account.card_exp_month and account.card_exp_year:
            expiry = f" exp {account.card_exp_month:02d}/{account.card_exp_year}"
        return f"{account.card_brand or 'Card'} •••• {account.card_last4}{expiry}"

    @admin.display(description="invoices")
    def invoices_link(self, account: Account) -> str:
        if account.pk is None:
            return "—"
        url = reverse("admin:invoices_invoice_changelist") + f"?account={account.pk}"
        return _counted_link(url, account.invoices.count(), "invoice")

    @admin.display(description="usage records")
    def usage_link(self, account: Account) -> str:
        if account.pk is None:
            return "—"
        url = reverse("admin:usage_usagerecord_changelist") + f"?account__id__exact={account.pk}"
        return _counted_link(url, account.usage_records.count(), "record")

    @admin.display(description="API keys")
    def api_key_link(self, account: Account) -> str:
        if account.pk is None or account.is_deleted:
            return "—"
        url = reverse("admin:accounts_apikey_add") + f"?account={account.pk}"
        return format_html('<a href="{}">Create an API key for this account</a>', url)

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.is_deleted:
            return False  # a deleted account is kept for the books, as it was
        return super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change):
        fields = {name: form.cleaned_data[name] for name in form.cleaned_data}
        if not change:
            created = account_create(**fields)
            obj.__dict__.update(created.__dict__)
            return
        changed = {name: fields[name] for name in form.changed_data if name in fields}
        if changed:
            updated = account_update(account=obj, **changed)
            obj.__dict__.update(updated.__dict__)

    # Soft delete, whichever way staff ask for it: rows are never removed.

    def get_deleted_objects(self, objs, request):
        # The default collector would list invoices and payments as "protected"
        # and refuse; a soft delete touches none of them.
        names = [str(obj) for obj in objs]
        return names, {Account._meta.verbose_name_plural: len(names)}, set(), []

    def delete_model(self, request, obj):
        account_soft_delete(account=obj)

    def delete_queryset(self, request, queryset):
        for account in queryset:
            account_soft_delete(account=account)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # soft_delete_accounts says what it does
        return actions

    soft_delete_accounts = service_action(
        account_soft_delete,
        subject="account",
        description="Delete selected accounts (soft: invoices are kept)",
        done="Deleted",
        note="Their invoices, payments and usage are kept and their API keys revoked.",
        errors=(),
    )


class SellerBankAccountInline(admin.TabularInline):
    """One bank account per currency: invoices in that currency print it and give it
    as their e-invoice's payment means (the default account below serves the rest)."""

    model = SellerBankAccount
    fields = ("currency", "account_holder", "bank_name", "iban", "bic")
    extra = 0
    verbose_name = "bank account for a currency"
    verbose_name_plural = "Bank accounts per currency"


@admin.register(Seller)
class SellerAdmin(admin.ModelAdmin):
    """One row: the list goes straight to it."""

    fieldsets = (
        (None, {"fields": ("name", "logo", "email", "phone", "vat_id")}),
        ("Address", {"fields": (*ADDRESS_FIELDS, "country_code")}),
        (
            "Registration",
            {
                "fields": ("registration_id", "registered_office", "legal_form", "share_capital"),
                "description": "Printed in the footer of every invoice and credit note, and "
                "given in their e-invoices; frozen on each invoice when it is issued.",
            },
        ),
        (
            "Default bank account",
            {
                "fields": ("bank_name", "bank_account_holder", "iban", "bic"),
                "description": "For invoices in a currency without an account of its own.",
            },
        ),
        ("Invoice", {"fields": ("invoice_footer",)}),
    )
    inlines = (SellerBankAccountInline,)

    def changelist_view(self, request, extra_context=None):
        seller = Seller.load()
        return redirect(reverse("admin:accounts_seller_change", args=[seller.pk]))

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ApiKeyStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("active", "Active"), ("revoked", "Revoked"), ("expired", "Expired")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True).exclude(expires_at__lte=now)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        if self.value() == "expired":
            return queryset.filter(revoked_at__isnull=True, expires_at__lte=now)
        return queryset


class ApiKeyForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = ("name", "scope", "account", "expires_at")

    def clean_account(self):
        account = self.cleaned_data.get("account")
        if account is not None and account.is_deleted:
            raise forms.ValidationError("This account has been deleted.")
        return account

    def clean_expires_at(self):
        expires_at = self.cleaned_data.get("expires_at")
        if expires_at is not None and expires_at <= timezone.now():
            raise forms.ValidationError("Must be in the future.")
        return expires_at


def _day(value) -> str:
    return timezone.localtime(value).date().isoformat() if value else ""


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are created here (the secret is shown once) and revoked, never edited."""

    form = ApiKeyForm
    # Dates as days and "created" with its author: nine columns fit 1,280 px.
    list_display = (
        "name",
        "prefix",
        "scope",
        "account",
        "status",
        "expires",
        "last_used",
        "created",
    )
    list_filter = (ApiKeyStatusFilter, "scope")
    search_fields = ("name", "prefix", "account__org_name")
    list_select_related = ("account", "created_by")
    autocomplete_fields = ("account",)
    actions = ("revoke_keys",)
    shown_fields = (
        "name",
        "prefix",
        "scope",
        "account",
        "status",
        "expires_at",
        "revoked_at",
        "last_used_at",
        "created_by",
        "created_at",
    )

    @admin.display(description="expires", ordering="expires_at")
    def expires(self, key: ApiKey) -> str:
        return _day(key.expires_at) or "never"

    @admin.display(description="last used", ordering="last_used_at")
    def last_used(self, key: ApiKey) -> str:
        return _day(key.last_used_at) or "never"

    @admin.display(description="created", ordering="created_at")
    def created(self, key: ApiKey) -> str:
        by = f" by {key.created_by.get_username()}" if key.created_by is not None else ""
        return f"{_day(key.created_at)}{by}"

    @admin.display(description="status")
    def status(self, key: ApiKey) -> str:
        if key.revoked_at is not None:
            return "revoked"
        if key.expires_at is not None and key.expires_at <= timezone.now():
            return "expired"
        return "active"

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("name", "scope", "account", "expires_at")
        return self.shown_fields  # never key_hash

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.shown_fields

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # revoke instead: the key stays on record

    def save_model(self, request, obj, form, change):
        if change:
            return  # keys are immutable; revoke and create a new one
        key, secret = api_key_create(
            name=form.cleaned_data["name"],
            scope=form.cleaned_data["scope"],
            account=form.cleaned_data.get("account"),
            expires_at=form.cleaned_data.get("expires_at"),
            created_by=request.user,
        )
        obj.__dict__.update(key.__dict__)
        # Kept on the request only, for the page that follows: never in a session,
        # a cookie-backed message or the log.
        request._api_key_secret = secret

    def response_add(self, request, obj, post_url_continue=None):
        secret = getattr(request, "_api_key_secret", None)
        if secret is None:
            return super().response_add(request, obj, post_url_continue)
        context = {
            **self.admin_site.each_context(request),
            "title": "API key created",
            "opts": self.model._meta,
            "key": obj,
            "secret": secret,
        }
        response = TemplateResponse(request, "admin/accounts/apikey/created.html", context)
        response["Cache-Control"] = "no-store"
        return response

    revoke_keys = service_action(
        api_key_revoke,
        subject="api_key",
        description="Revoke selected keys",
        done="Revoked",
        errors=(),
    )


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "key",
        "api_key",
        "request_method",
        "request_path",
        "status",
        "response_status",
        "expires_at",
    )
    list_filter = ("status",)
    list_select_related = ("api_key",)
    exclude = ("response_body",)
    show_full_result_count = False

    def has_delete_permission(self, request, obj=None) -> bool:
        # Stored responses are disposable (pruned after a day): one can be removed by hand.
        return admin.ModelAdmin.has_delete_permission(self, request, obj)
