"""List filters of the invoice list, each one an indexed condition."""

from __future__ import annotations

import datetime as dt

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
        months: list[tuple[str, str]] = []
        current = bounds["last"]
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


class OutstandingFilter(admin.SimpleListFilter):
    """Money owed: issued and neither paid nor cancelled, whatever the charge did
    (awaiting payment, payment failed, failed)."""

    title = "payment"
    parameter_name = "outstanding"

    def lookups(self, request, model_admin):
        return [
            ("yes", "Outstanding"),
            ("no", "Not outstanding"),
            # What was invoiced, paid or not: the receivables report's "invoiced".
            ("issued", "Issued, not cancelled"),
        ]

    def queryset(self, request, queryset):
        outstanding = Invoice.CHARGEABLE_STATES
        if self.value() == "issued":
            return queryset.filter(state__in=Invoice.ISSUED_STATES)
        if self.value() == "yes":
            return queryset.filter(state__in=outstanding)
        if self.value() == "no":
            return queryset.exclude(state__in=outstanding)
        return queryset


class DateRangeFilter(admin.FieldListFilter):
    """From and to dates (both included) on a date field: `<field>__gte`, `<field>__lte`.

    The ageing report's cells link to the list with these parameters."""

    template = "admin/invoices/invoice/date_range_filter.html"
    titles = {"issued_on": "issue date", "due_on": "due date"}

    def __init__(self, field, request, params, model, model_admin, field_path):
        self.lookup_since = f"{field_path}__gte"
        self.lookup_until = f"{field_path}__lte"
        super().__init__(field, request, params, model, model_admin, field_path)
        self.title = self.titles.get(field_path, str(field.verbose_name))
        # The base class took our parameters out of `params`, as lists.
        for name, value in list(self.used_parameters.items()):
            self.used_parameters[name] = value[-1] if isinstance(value, list) else value
        self.since = self.used_parameters.get(self.lookup_since, "")
        self.until = self.used_parameters.get(self.lookup_until, "")

    def expected_parameters(self):
        return [self.lookup_since, self.lookup_until]

    def has_output(self) -> bool:
        return True

    def queryset(self, request, queryset):
        bounds = {}
        for name, value in self.used_parameters.items():
            if not value:
                continue
            try:
                bounds[name] = dt.date.fromisoformat(str(value))
            except ValueError:
                raise admin.options.IncorrectLookupParameters(
                    f"{name} must be a date YYYY-MM-DD, got {value!r}"
                ) from None
        return queryset.filter(**bounds)

    def choices(self, changelist):
        # The template draws a small form; these are the other filters it keeps.
        self.kept = [
            (name, value)
            for name, value in changelist.params.items()
            if name not in self.expected_parameters()
        ]
        yield {
            "selected": not (self.since or self.until),
            "query_string": changelist.get_query_string(remove=self.expected_parameters()),
            "display": "Any date",
        }


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
