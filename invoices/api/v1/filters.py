"""Filters and ordering of GET /v1/invoices.

`state` (alias `status`) takes one or several states, repeated
(`?state=paid&state=pending`) or comma-separated (`?state=paid,pending`);
`month` is `YYYY-MM`; `issued_from`/`issued_to` bound the issue date;
`ordering` is one of a small allow-list (default: newest first). A bad value
is a 400 naming the parameter.
"""

from __future__ import annotations

import datetime as dt
import re

import django_filters
from django import forms
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema_field

from invoices.models import Invoice

_MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")

# Public ordering name -> model ordering; ties broken by id, so pages are stable.
ORDERINGS: dict[str, tuple[str, ...]] = {
    "-created_at": ("-created_at", "-id"),
    "created_at": ("created_at", "id"),
    "-date": ("-issued_on", "-created_at", "-id"),
    "date": ("issued_on", "created_at", "id"),
    "-due_date": ("-due_on", "-id"),
    "due_date": ("due_on", "id"),
    "-amount": ("-cost", "-id"),
    "amount": ("cost", "id"),
    "-id": ("-id",),
    "id": ("id",),
}
DEFAULT_ORDERING = "-created_at"


class MonthField(forms.CharField):
    def to_python(self, value):
        value = super().to_python(value)
        if value in self.empty_values:
            return None
        match = _MONTH_RE.match(value)
        if match is None or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 1:
            raise forms.ValidationError("must be a month as YYYY-MM")
        return dt.date(int(match.group(1)), int(match.group(2)), 1)


class StrictDateFormField(forms.DateField):
    input_formats = ["%Y-%m-%d"]
    default_error_messages = {"invalid": "must be a date as YYYY-MM-DD"}


class CommaMultipleChoiceField(forms.MultipleChoiceField):
    """Accepts repeated parameters and comma-separated values alike."""

    def to_python(self, value):
        values = super().to_python(value)
        return [part.strip() for item in values for part in item.split(",") if part.strip()]


class StateFilter(django_filters.MultipleChoiceFilter):
    field_class = CommaMultipleChoiceField

    def __init__(self, *args, **kwargs):
        # The state is the invoice's own column, so no row can come twice; the
        # DISTINCT django-filter adds by default made PostgreSQL sort every
        # matching invoice before taking a page (200 ms for a month's paid ones).
        kwargs.setdefault("distinct", False)
        super().__init__(*args, **kwargs)


@extend_schema_field({"type": "string", "format": "date"})
class StrictDateFilter(django_filters.Filter):
    field_class = StrictDateFormField


@extend_schema_field({"type": "integer", "minimum": 1})
class IntegerFilter(django_filters.Filter):
    field_class = forms.IntegerField


@extend_schema_field({"type": "string", "pattern": r"^\d{4}-\d{2}$", "example": "2026-03"})
class MonthFilter(django_filters.Filter):
    field_class = MonthField


class InvoiceFilterSet(django_filters.FilterSet):
    state = StateFilter(
        field_name="state", choices=Invoice.State.choices, help_text="One or several states."
    )
    status = StateFilter(
        field_name="state", choices=Invoice.State.choices, help_text="Alias of `state`."
    )
    month = MonthFilter(field_name="period", help_text="The billed month, YYYY-MM.")
    customer_id = IntegerFilter(
        field_name="account_id",
        min_value=1,
        help_text="The customer (account) id.",
    )
    issued_from = StrictDateFilter(
        field_name="issued_on",
        lookup_expr="gte",
        help_text="Issued on or after this date (YYYY-MM-DD).",
    )
    issued_to = StrictDateFilter(
        field_name="issued_on",
        lookup_expr="lte",
        help_text="Issued on or before this date (YYYY-MM-DD).",
    )
    ordering = django_filters.ChoiceFilter(
        choices=[(name, name) for name in ORDERINGS],
        method="order",
        empty_label=None,
        help_text=f"Sort order (default {DEFAULT_ORDERING}).",
    )

    class Meta:
        model = Invoice
        fields: list[str] = []

    def order(self, queryset: QuerySet[Invoice], name: str, value: str) -> QuerySet[Invoice]:
        return queryset.order_by(*ORDERINGS[value])

    def filter_queryset(self, queryset: QuerySet[Invoice]) -> QuerySet[Invoice]:
        if not self.form.cleaned_data.get("ordering"):
            queryset = queryset.order_by(*ORDERINGS[DEFAULT_ORDERING])
        return super().filter_queryset(queryset)
