"""Selectors of the finance dashboard: each figure from one GROUP BY query.

Amounts are never added across currencies: every figure is per currency.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone

from billing.lib.money import ZERO
from billing.lib.months import add_months, month_bounds, month_start
from invoices.models import Invoice, PaymentTransaction
from usage.models import UsageRecord

State = Invoice.State
MONTHS = 12
MAX_MONTHS = 36  # the longest range the dashboard draws
RECENT_DAYS = 30
TOP_ACCOUNTS = 5


@dataclass
class CurrencyRevenue:
    currency: str
    months: list[tuple[dt.date, Decimal]]

    @property
    def total(self) -> Decimal:
        return sum((amount for _, amount in self.months), ZERO)


@dataclass
class Outstanding:
    currency: str
    invoices: int
    amount: Decimal
    overdue_invoices: int
    overdue_amount: Decimal


@dataclass
class FailedPayments:
    currency: str
    attempts: int
    amount: Decimal
    invoices: int


@dataclass
class TopAccount:
    account_id: int
    org_name: str
    currency: str
    revenue: Decimal
    invoices: int


@dataclass
class ServiceUsage:
    service: str
    currency: str
    cost: Decimal
    records: int
    hours: Decimal


@dataclass
class Dashboard:
    today: dt.date
    months: list[dt.date]
    revenue: list[CurrencyRevenue] = field(default_factory=list)
    outstanding: list[Outstanding] = field(default_factory=list)
    failed_payments: list[FailedPayments] = field(default_factory=list)
    top_accounts: dict[str, list[TopAccount]] = field(default_factory=dict)
    usage: list[ServiceUsage] = field(default_factory=list)


def _as_date(value) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


def month_range(first: dt.date, last: dt.date) -> list[dt.date]:
    """The first days of the months from `first` to `last`, both included."""
    months: list[dt.date] = []
    current = month_start(first)
    while current <= last and len(months) < MAX_MONTHS:
        months.append(current)
        current = add_months(current, 1)
    return months


def last_months(now: dt.datetime, count: int = MONTHS) -> list[dt.date]:
    return [add_months(now.date(), -back) for back in range(count - 1, -1, -1)]


def revenue_by_month(
    now: dt.datetime, months: list[dt.date] | None = None
) -> tuple[list[dt.date], list[CurrencyRevenue]]:
    """Paid invoices per month of payment, per currency: the last twelve months, or `months`."""
    months = months or last_months(now)
    start, _ = month_bounds(months[0])
    _, end = month_bounds(months[-1])
    rows = (
        Invoice.objects.filter(state=State.PAID, paid_at__gte=start, paid_at__lt=end)
        .annotate(month=TruncMonth("paid_at"))
        .values("month", "currency")
        .annotate(total=Sum("cost"))
        .order_by()
    )
    per_currency: dict[str, dict[dt.date, Decimal]] = {}
    for row in rows:
        per_currency.setdefault(row["currency"], {})[_as_date(row["month"])] = row["total"]
    revenue = [
        CurrencyRevenue(currency, [(month, totals.get(month, ZERO)) for month in months])
        for currency, totals in sorted(per_currency.items())
    ]
    return months, revenue


def outstanding_by_currency(today: dt.date) -> list[Outstanding]:
    """Issued and unpaid, and the overdue part of it (due date passed)."""
    overdue = Q(due_on__lt=today)
    rows = (
        Invoice.objects.filter(state__in=Invoice.OUTSTANDING_STATES)
        .values("currency")
        .annotate(
            invoices=Count("id"),
            amount=Sum("cost"),
            overdue_invoices=Count("id", filter=overdue),
            overdue_amount=Sum("cost", filter=overdue),
        )
        .order_by("currency")
    )
    return [
        Outstanding(
            currency=row["currency"],
            invoices=row["invoices"],
            amount=row["amount"] or ZERO,
            overdue_invoices=row["overdue_invoices"],
            overdue_amount=row["overdue_amount"] or ZERO,
        )
        for row in rows
    ]


def failed_payments_recent(now: dt.datetime) -> list[FailedPayments]:
    """Declined charge attempts of the last thirty days."""
    rows = (
        PaymentTransaction.objects.filter(
            success=False,
            action=PaymentTransaction.Action.PURCHASE,
            created_at__gte=now - dt.timedelta(days=RECENT_DAYS),
        )
        .values("currency")
        .annotate(
            attempts=Count("id"), amount=Sum("amount"), invoices=Count("invoice", distinct=True)
        )
        .order_by("currency")
    )
    return [
        FailedPayments(row["currency"], row["attempts"], row["amount"] or ZERO, row["invoices"])
        for row in rows
    ]


def top_accounts_by_revenue(
    now: dt.datetime,
    currencies: list[str],
    limit: int = TOP_ACCOUNTS,
    months: list[dt.date] | None = None,
) -> dict[str, list[TopAccount]]:
    """The best-paying accounts of the months shown (twelve by default), per currency."""
    months = months or last_months(now)
    start, _ = month_bounds(months[0])
    _, end = month_bounds(months[-1])
    result: dict[str, list[TopAccount]] = {}
    for currency in currencies:
        rows = (
            Invoice.objects.filter(
                state=State.PAID, paid_at__gte=start, paid_at__lt=end, currency=currency
            )
            .values("account_id", "account__org_name")
            .annotate(revenue=Sum("cost"), invoices=Count("id"))
            .order_by("-revenue", "account_id")[:limit]
        )
        result[currency] = [
            TopAccount(
                row["account_id"],
                row["account__org_name"],
                currency,
                row["revenue"],
                row["invoices"],
            )
            for row in rows
        ]
    return result


def usage_by_service(now: dt.datetime) -> list[ServiceUsage]:
    """Usage cost per service over the last thirty days, in each account's currency."""
    rows = (
        # Pre-rated records only: metered ones have no cost until their plan rates them.
        UsageRecord.objects.filter(
            start_time__gte=now - dt.timedelta(days=RECENT_DAYS), metric__isnull=True
        )
        .values("service", "account__currency")
        .annotate(cost=Sum("cost"), records=Count("id"), seconds=Sum("duration"))
        .order_by("-cost", "service")
    )
    return [
        ServiceUsage(
            service=row["service"],
            currency=row["account__currency"],
            cost=row["cost"] or ZERO,
            records=row["records"],
            hours=(Decimal(row["seconds"] or 0) / 3600).quantize(Decimal("0.1")),
        )
        for row in rows
    ]


def dashboard_get(now: dt.datetime | None = None, months: list[dt.date] | None = None) -> Dashboard:
    """The dashboard's figures; `months` (first days, oldest first) replaces the last twelve."""
    now = now or timezone.now()
    months, revenue = revenue_by_month(now, months)
    return Dashboard(
        today=now.date(),
        months=months,
        revenue=revenue,
        outstanding=outstanding_by_currency(now.date()),
        failed_payments=failed_payments_recent(now),
        top_accounts=top_accounts_by_revenue(
            now, [item.currency for item in revenue], months=months
        ),
        usage=usage_by_service(now),
    )


# -- receivables: the ageing of what is owed, and what came in against what went out

# (label, fewest days past due, most days past due); None is open-ended.
AGEING_BUCKETS: tuple[tuple[str, int | None, int | None], ...] = (
    ("Current", None, 0),  # not yet due, or due today
    ("1-30 days", 1, 30),
    ("31-60 days", 31, 60),
    ("61-90 days", 61, 90),
    ("Over 90 days", 91, None),
)


@dataclass
class AgeingCell:
    label: str
    invoices: int
    amount: Decimal
    due_from: dt.date | None  # the due dates this cell covers, both included
    due_until: dt.date | None


@dataclass
class AgeingRow:
    currency: str
    cells: list[AgeingCell]

    @property
    def invoices(self) -> int:
        return sum(cell.invoices for cell in self.cells)

    @property
    def amount(self) -> Decimal:
        return sum((cell.amount for cell in self.cells), ZERO)


def _due_window(today: dt.date, fewest: int | None, most: int | None):
    """Days past due -> due dates: 1-30 days past due is due from today-30 to today-1;
    "current" (0 days or not yet due) is due from today on."""
    due_from = today - dt.timedelta(days=most) if most is not None else None
    due_until = today - dt.timedelta(days=fewest) if fewest is not None else None
    return due_from, due_until


def ageing_report(today: dt.date) -> list[AgeingRow]:
    """Outstanding invoices (issued, not paid, not cancelled) by days past due, per
    currency: one GROUP BY with a filtered sum per bucket (the state/due_on index)."""
    windows = [(label, *_due_window(today, fewest, most)) for label, fewest, most in AGEING_BUCKETS]
    aggregates: dict[str, Count | Sum] = {}
    for index, (_, due_from, due_until) in enumerate(windows):
        condition = Q()
        if due_from is not None:
            condition &= Q(due_on__gte=due_from)
        if due_until is not None:
            condition &= Q(due_on__lte=due_until)
        aggregates[f"n{index}"] = Count("id", filter=condition)
        aggregates[f"a{index}"] = Sum("cost", filter=condition)
    rows = (
        Invoice.objects.filter(state__in=Invoice.CHARGEABLE_STATES)
        .values("currency")
        .annotate(**aggregates)
        .order_by("currency")
    )
    # The annotations are built from `aggregates`: the row keys are not literals.
    rows_by_name: Iterable[Mapping[str, Any]] = rows
    return [
        AgeingRow(
            currency=row["currency"],
            cells=[
                AgeingCell(label, row[f"n{i}"], row[f"a{i}"] or ZERO, due_from, due_until)
                for i, (label, due_from, due_until) in enumerate(windows)
            ],
        )
        for row in rows_by_name
    ]


@dataclass
class MonthFlow:
    month: dt.date
    invoiced: Decimal
    invoices: int
    collected: Decimal


@dataclass
class CurrencyFlow:
    currency: str
    months: list[MonthFlow]


def collected_vs_invoiced(months: list[dt.date]) -> list[CurrencyFlow]:
    """Per currency and month: what was invoiced (issued that month, not cancelled) and
    what was collected (successful payments received that month, refunds deducted)."""
    start, _ = month_bounds(months[0])
    _, end = month_bounds(months[-1])
    invoiced = (
        Invoice.objects.filter(
            state__in=Invoice.ISSUED_STATES,
            issued_on__gte=start.date(),
            issued_on__lt=end.date(),
        )
        .annotate(month=TruncMonth("issued_on"))
        .values("month", "currency")
        .annotate(total=Sum("cost"), invoices=Count("id"))
        .order_by()
    )
    collected = (
        PaymentTransaction.objects.filter(success=True, created_at__gte=start, created_at__lt=end)
        .annotate(month=TruncMonth("created_at"))
        .values("month", "currency", "action")
        .annotate(total=Sum("amount"))
        .order_by()
    )
    table: dict[str, dict[dt.date, MonthFlow]] = {}

    def cell(currency: str, month) -> MonthFlow:
        month = _as_date(month)
        per_month = table.setdefault(currency, {m: MonthFlow(m, ZERO, 0, ZERO) for m in months})
        return per_month.setdefault(month, MonthFlow(month, ZERO, 0, ZERO))

    for row in invoiced:
        flow = cell(row["currency"], row["month"])
        flow.invoiced += row["total"] or ZERO
        flow.invoices += row["invoices"]
    for payment in collected:
        flow = cell(payment["currency"], payment["month"])
        sign = -1 if payment["action"] == PaymentTransaction.Action.REFUND else 1
        flow.collected += sign * (payment["total"] or ZERO)
    return [
        CurrencyFlow(currency, [per_month[m] for m in months])
        for currency, per_month in sorted(table.items())
    ]
