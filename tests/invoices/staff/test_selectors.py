"""The dashboard's selectors: figures per currency from a handful of GROUP BY queries."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from invoices.staff.selectors import dashboard_get


@pytest.mark.django_db
class TestFigures:
    def test_revenue_per_month_per_currency(self, data, now):
        board = dashboard_get(now)
        assert len(board.months) == 12
        assert board.months[-1] == dt.date(2026, 11, 1)
        revenue = {item.currency: dict(item.months) for item in board.revenue}
        assert revenue["EUR"][dt.date(2026, 9, 1)] == Decimal("100.00")
        assert revenue["EUR"][dt.date(2026, 10, 1)] == Decimal("50.00")
        assert revenue["EUR"][dt.date(2026, 11, 1)] == Decimal("0")
        assert revenue["USD"][dt.date(2026, 10, 1)] == Decimal("60.00")

    def test_outstanding_and_overdue(self, data, now):
        board = dashboard_get(now)
        usd = {row.currency: row for row in board.outstanding}["USD"]
        # 70 (overdue) + 5 (not due) + 9.99 (declined, not yet due)
        assert usd.amount == Decimal("84.99") and usd.invoices == 3
        assert usd.overdue_amount == Decimal("70.00") and usd.overdue_invoices == 1

    def test_failed_payments_last_30_days(self, data, now):
        [row] = dashboard_get(now).failed_payments
        assert (row.currency, row.attempts, row.amount, row.invoices) == (
            "USD",
            1,
            Decimal("9.99"),
            1,
        )

    def test_top_accounts_and_usage_by_service(self, data, now):
        board = dashboard_get(now)
        assert [(a.org_name, a.revenue) for a in board.top_accounts["EUR"]] == [
            ("Euro Co", Decimal("150.00"))
        ]
        usage = {(row.service, row.currency): row for row in board.usage}
        assert usage[("EC2", "USD")].cost == Decimal("3.75")  # the 45-day-old record is out
        assert usage[("EC2", "USD")].records == 2
        assert usage[("S3", "USD")].cost == Decimal("0.40")

    def test_queries_are_a_handful_whatever_the_data(
        self, data, now, django_assert_max_num_queries
    ):
        with django_assert_max_num_queries(8):
            dashboard_get(now)


@pytest.mark.django_db
def test_twelve_months_back_across_a_new_year():
    board = dashboard_get(dt.datetime(2026, 1, 31, 23, 59, tzinfo=dt.UTC))
    assert board.months[0] == dt.date(2025, 2, 1)
    assert board.months[-1] == dt.date(2026, 1, 1)
    assert len(set(board.months)) == 12
