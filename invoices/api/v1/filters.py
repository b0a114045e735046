"""Filters and ordering of GET /v1/invoices.

`state` (alias `status`) takes one or several states, repeated
(`?state=paid&state=pending`) or comma-separated (`?state=paid,pending`);
`month` is `YYYY-MM`; `issued_from`/`issued_to` bound the issue date;
`ordering` is one of a small allow-list (default: newest first). A bad value
is a 400 naming the parameter.
"""

from __future__ import annotations

import django_filters
from django import forms
from django.db.models import QuerySet
from django_filters.widgets import QueryArrayWidget
from drf_spectacular.utils import extend_schema_field

from billing.lib.months import parse_month
from invoices.models import Invoice

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
        if value == "":
            # `?month=` names no month: refused, as the schema's pattern does.
            raise forms.ValidationError("must be a month as YYYY-MM")
        value = super().to_python(value)
        if value in self.empty_values:
            return None
        try:
            return parse_month(value)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None


class StrictDateFormField(forms.DateField):
    input_formats = ["%Y-%m-%d"]
    default_error_messages = {"invalid": "must be a date as YYYY-MM-DD"}


class CommaQueryArrayWidget(QueryArrayWidget):
    """Repeated parameters and comma-separated values alike, in the order given."""

    def value_from_datadict(self, data, files, name):
        values = data.getlist(name) if hasattr(data, "getlist") else [data.get(name)]
        parts = [part.strip() for value in values if value for part in value.split(",")]
        return list(dict.fromkeys(part for part in parts if part))


class StateInFilter(django_filters.BaseInFilter, django_filters.ChoiceFilter):
    """`state IN (...)`: repeated (`?state=a&state=b`) or comma-separated (`?state=a,b`)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("choices", Invoice.State.choices)
        kwargs.setdefault("widget", CommaQueryArrayWidget)
        kwargs.setdefault("lookup_expr", "in")
        # The state is the invoice's own column, so no row can come twice; a
        # DISTINCT would make PostgreSQL sort every match before taking a page.
        kwargs.setdefault("distinct", False)
        super().__init__(*args, **kwargs)


@extend_schema_field({"type": "string", "format": "date"})
class StrictDateFilter(django_filters.Filter):
    field_class = StrictDateFormField


@extend_schema_field({"type": "integer", "minimum": 1})
class IntegerFilter(django_filters.Filter):
    field_class = forms.IntegerField


@extend_schema_field(
    {"type": "string", "pattern": r"^\d{4}-(0[1-9]|1[0-2])$", "example": "2026-03"}
)
class MonthFilter(django_filters.Filter):
    field_class = MonthField


class InvoiceOrderingFilter(django_filters.OrderingFilter):
    """django-filter's ordering over the public names, each completed by its tie-breakers."""

    def filter(self, qs: QuerySet[Invoice], value) -> QuerySet[Invoice]:
        names = [name for name in value or () if name] or [DEFAULT_ORDERING]
        return qs.order_by(*(field for name in names for field in ORDERINGS[name]))


class InvoiceFilterSet(django_filters.FilterSet):
    state = StateInFilter(field_name="state", help_text="One or several states.")
    status = StateInFilter(field_name="state", help_text="Alias of `state`.")
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
    ordering = InvoiceOrderingFilter(
        fields={
            "created_at": "created_at",
            "issued_on": "date",
            "due_on": "due_date",
            "cost": "amount",
            "id": "id",
        },
        help_text=f"Sort order (default {DEFAULT_ORDERING}).",
    )

    class Meta:
        model = Invoice
        fields: list[str] = []

    def filter_queryset(self, queryset: QuerySet[Invoice]) -> QuerySet[Invoice]:
        if not self.form.cleaned_data.get("ordering"):
            queryset = queryset.order_by(*ORDERINGS[DEFAULT_ORDERING])
        return super().filter_queryset(queryset)
