"""Staff pages outside the admin: the finance dashboard (login through the admin)."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from billing.lib.charts import PALETTE, Bar, bar_list_chart, column_chart
from billing.lib.months import format_month, month_end, parse_month
from invoices.pdf import format_amount
from invoices.staff.selectors import (
    AGEING_BUCKETS,
    MAX_MONTHS,
    ageing_report,
    collected_vs_invoiced,
    dashboard_get,
    last_months,
    month_range,
)


def _month_range(request) -> tuple[list[dt.date], str]:
    """The months asked for by `?from=YYYY-MM&to=YYYY-MM` (the last twelve by default),
    and an error to show when the range is not one."""
    now = timezone.now()
    default = last_months(now)
    first, last = request.GET.get("from", ""), request.GET.get("to", "")
    if not first and not last:
        return default, ""
    try:
        start = parse_month(first) if first else default[0]
        end = parse_month(last) if last else default[-1]
    except ValueError:
        return default, "Months are written YYYY-MM; showing the last twelve months."
    if end < start:
        return default, "The range ends before it starts; showing the last twelve months."
    months = month_range(start, end)
    if months[-1] < end:
        return months, f"At most {MAX_MONTHS} months are shown at once."
    return months, ""


def _range_context(months: list[dt.date], error: str) -> dict:
    return {
        "range_from": format_month(months[0]),
        "range_to": format_month(months[-1]),
        "range_error": error,
    }


def invoice_list_url(**params: str) -> str:
    """The invoice list filtered by the admin's own parameters (a drill-down)."""
    url = reverse("admin:invoices_invoice_changelist")
    return f"{url}?{urlencode({k: v for k, v in params.items() if v})}"


@staff_member_required
@permission_required("invoices.view_invoice", raise_exception=True)
def dashboard(request):
    months, range_error = _month_range(request)
    data = dashboard_get(months=months)
    span = f"{months[0]:%b %Y} – {months[-1]:%b %Y}"
    revenue_charts = [
        {
            "currency": item.currency,
            "total": format_amount(item.total, item.currency),
            "svg": column_chart(
                [
                    Bar(
                        month.strftime("%b"),
                        amount,
                        f"{month:%B %Y}: {format_amount(amount, item.currency)} {item.currency}",
                    )
                    for month, amount in item.months
                ],
                title=f"Revenue per month ({item.currency})",
                colour=PALETTE[index % len(PALETTE)],
                unit=item.currency,
            ),
        }
        for index, item in enumerate(data.revenue)
    ]
    top_charts = [
        {
            "currency": currency,
            "svg": bar_list_chart(
                [
                    Bar(
                        row.org_name,
                        row.revenue,
                        f"{row.org_name}: {currency} {format_amount(row.revenue, currency)}",
                    )
                    for row in rows
                ],
                title=f"Top accounts by revenue ({currency})",
            ),
        }
        for currency, rows in data.top_accounts.items()
        if rows
    ]
    # One chart per currency: yen and dollars never share a scale.
    usage_by_currency: dict[str, list] = {}
    for row in data.usage:
        usage_by_currency.setdefault(row.currency, []).append(row)
    usage_charts = [
        {
            "currency": currency,
            "svg": bar_list_chart(
                [
                    Bar(
                        f"{row.service} ({currency})",
                        row.cost,
                        f"{row.service}: {currency} {format_amount(row.cost, currency)}, "
                        f"{row.records} records",
                    )
                    for row in rows
                ],
                title=f"Usage cost by service, last 30 days ({currency})",
                colour=PALETTE[2],
            ),
        }
        for currency, rows in sorted(usage_by_currency.items())
    ]
    context = {
        **admin.site.each_context(request),
        **_range_context(months, range_error),
        "title": "Finance dashboard",
        "span": span,
        "data": data,
        "revenue_charts": revenue_charts,
        "top_charts": top_charts,
        "usage_charts": usage_charts,
        "outstanding": [
            {
                "currency": row.currency,
                "invoices": row.invoices,
                "amount": format_amount(row.amount, row.currency),
                "overdue_invoices": row.overdue_invoices,
                "overdue_amount": format_amount(row.overdue_amount, row.currency),
                # Red is for a real problem: money past its due date, not a zero.
                "overdue_is_problem": row.overdue_amount > 0,
            }
            for row in data.outstanding
        ],
        "failed": [
            {
                "currency": row.currency,
                "attempts": row.attempts,
                "invoices": row.invoices,
                "amount": format_amount(row.amount, row.currency),
            }
            for row in data.failed_payments
        ],
    }
    return TemplateResponse(request, "staff/dashboard.html", context)


@staff_member_required
@permission_required("invoices.view_invoice", raise_exception=True)
def ageing(request):
    """What is owed, by how long past due, per currency; every figure links to its invoices."""
    today = timezone.now().date()
    months, range_error = _month_range(request)
    rows = []
    for row in ageing_report(today):
        cells = [
            {
                "label": cell.label,
                "invoices": cell.invoices,
                "amount": format_amount(cell.amount, row.currency),
                "url": invoice_list_url(
                    outstanding="yes",
                    currency=row.currency,
                    due_on__gte=cell.due_from.isoformat() if cell.due_from else "",
                    due_on__lte=cell.due_until.isoformat() if cell.due_until else "",
                ),
            }
            for cell in row.cells
        ]
        rows.append(
            {
                "currency": row.currency,
                "cells": cells,
                "invoices": row.invoices,
                "amount": format_amount(row.amount, row.currency),
                "url": invoice_list_url(outstanding="yes", currency=row.currency),
            }
        )
    flows = [
        {
            "currency": flow.currency,
            "months": [
                {
                    "month": item.month,
                    "invoiced": format_amount(item.invoiced, flow.currency),
                    "invoices": item.invoices,
                    "collected": format_amount(item.collected, flow.currency),
                    "gap": format_amount(item.invoiced - item.collected, flow.currency),
                    "url": invoice_list_url(
                        outstanding="issued",
                        currency=flow.currency,
                        issued_on__gte=item.month.isoformat(),
                        issued_on__lte=month_end(item.month).isoformat(),
                    ),
                }
                for item in flow.months
            ],
        }
        for flow in collected_vs_invoiced(months)
    ]
    context = {
        **admin.site.each_context(request),
        **_range_context(months, range_error),
        "title": "Receivables: ageing, invoiced and collected",
        "today": today,
        "buckets": [label for label, _, _ in AGEING_BUCKETS],
        "rows": rows,
        "flows": flows,
    }
    return TemplateResponse(request, "staff/ageing.html", context)
