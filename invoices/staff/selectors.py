"""Selectors of the finance dashboard: each figure from one GROUP BY query.

Amounts are never added across currencies: every figure is per currency.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone

from billing.lib.money import ZERO
from billing.lib.months import add_months, month_bounds
from invoices.models import Invoice, PaymentTransaction
from usage.models import UsageRecord

State = Invoice.State
MONTHS = 12
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


def revenue_by_month(now: dt.datetime) -> tuple[list[dt.date], list[CurrencyRevenue]]:
    """Paid invoices per month of payment, the last twelve months, per currency."""
    months = [add_months(now.date(), -back) for back in range(MONTHS - 1, -1, -1)]
    start, _ = month_bounds(months[0])
    rows = (
        Invoice.objects.filter(state=State.PAID, paid_at__gte=start)
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
    now: dt.datetime, currencies: list[str], limit: int = TOP_ACCOUNTS
) -> dict[str, list[TopAccount]]:
    """The best-paying accounts of the last twelve months, per currency (one query each)."""
    start, _ = month_bounds(add_months(now.date(), -(MONTHS - 1)))
    result: dict[str, list[TopAccount]] = {}
    for currency in currencies:
        rows = (
            Invoice.objects.filter(state=State.PAID, paid_at__gte=start, currency=currency)
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


def dashboard_get(now: dt.datetime | None = None) -> Dashboard:
    now = now or timezone.now()
    months, revenue = revenue_by_month(now)
    return Dashboard(
        today=now.date(),
        months=months,
        revenue=revenue,
        outstanding=outstanding_by_currency(now.date()),
        failed_payments=failed_payments_recent(now),
        top_accounts=top_accounts_by_revenue(now, [item.currency for item in revenue]),
        usage=usage_by_service(now),
    )
