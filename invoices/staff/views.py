"""Staff pages outside the admin: the finance dashboard (login through the admin)."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.template.response import TemplateResponse

from billing.lib.charts import PALETTE, Bar, bar_list_chart, column_chart
from invoices.pdf import format_amount
from invoices.staff.selectors import dashboard_get


@staff_member_required
@permission_required("invoices.view_invoice", raise_exception=True)
def dashboard(request):
    data = dashboard_get()
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
            ),
        }
        for index, item in enumerate(data.revenue)
    ]
    top_charts = [
        {
            "currency": currency,
            "svg": bar_list_chart(
                [Bar(row.org_name, row.revenue) for row in rows],
                title=f"Top accounts by revenue ({currency})",
            ),
        }
        for currency, rows in data.top_accounts.items()
        if rows
    ]
    usage_chart = bar_list_chart(
        [
            Bar(
                f"{row.service} ({row.currency})",
                row.cost,
                f"{row.service}: {row.cost:.2f} {row.currency}, {row.records} records",
            )
            for row in data.usage
        ],
        title="Usage cost by service, last 30 days",
        colour=PALETTE[2],
    )
    context = {
        **admin.site.each_context(request),
        "title": "Finance dashboard",
        "data": data,
        "revenue_charts": revenue_charts,
        "top_charts": top_charts,
        "usage_chart": usage_chart,
        "outstanding": [
            {
                "currency": row.currency,
                "invoices": row.invoices,
                "amount": format_amount(row.amount, row.currency),
                "overdue_invoices": row.overdue_invoices,
                "overdue_amount": format_amount(row.overdue_amount, row.currency),
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
