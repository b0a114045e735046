"""List filters of the invoice list, each one an indexed condition."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Max, Min
from django.utils import timezone

from accounts.models import Account
from billing.lib.months import format_month, parse_month, previous_month
from invoices.models import Invoice


def is_id(value: str) -> bool:
    """ASCII digits only: `"²".isdigit()` is true, and int("²") fails."""
    return value.isascii() and value.isdigit()


class MonthFilter(admin.SimpleListFilter):
    """The billed month, as period equality (indexed), newest first."""

    title = "month"
    parameter_name = "month"
    max_months = 24

    def lookups(self, request, model_admin):
        # MIN/MAX come from the period index: no scan, whatever the table size.
        bounds = Invoice.objects.aggregate(first=Min("period"), last=Max("period"))
        if bounds["last"] is None:
            return []
        months, current = [], bounds["last"]
        while current >= bounds["first"] and len(months) < self.max_months:
            months.append((format_month(current), current.strftime("%B %Y")))
            current = previous_month(current)
        selected = self.value()
        if selected and selected not in dict(months):
            months.append((selected, selected))
        return months

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        try:
            period = parse_month(value)
        except ValueError:
            raise admin.options.IncorrectLookupParameters(
                f"month must be YYYY-MM, got {value!r}"
            ) from None
        return queryset.filter(period=period)


class CurrencyFilter(admin.SimpleListFilter):
    """Only the currencies accounts actually bill in (the account table is small)."""

    title = "currency"
    parameter_name = "currency"

    def lookups(self, request, model_admin):
        codes = Account.objects.order_by("currency").values_list("currency", flat=True).distinct()
        return [(code, code) for code in codes]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(currency=self.value())
        return queryset


class OverdueFilter(admin.SimpleListFilter):
    """Issued, not paid or cancelled, and past the due date (the state/due_on index)."""

    title = "overdue"
    parameter_name = "overdue"

    def lookups(self, request, model_admin):
        return [("yes", "Overdue"), ("no", "Not overdue")]

    def queryset(self, request, queryset):
        today = timezone.now().date()
        if self.value() == "yes":
            return queryset.overdue(today)
        if self.value() == "no":
            return queryset.not_overdue(today)
        return queryset


class AccountFilter(admin.SimpleListFilter):
    """One account's invoices; reached from the account page or the account column."""

    title = "account"
    parameter_name = "account"

    def lookups(self, request, model_admin):
        value = self.value()
        if not value or not is_id(value):
            return []
        account = Account.objects.filter(pk=int(value)).only("org_name").first()
        return [(value, account.org_name if account else f"#{value}")]

    def has_output(self) -> bool:
        return bool(self.value())

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        if not is_id(value):
            raise admin.options.IncorrectLookupParameters("account must be an account id")
        return queryset.filter(account_id=int(value))
