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


@pytest.mark.django_db
class TestReceivables:
    def test_ageing_buckets_by_days_past_due(self, db):
        from invoices.models import Invoice
        from invoices.staff.selectors import ageing_report
        from tests.factories import AccountFactory, make_invoice

        today = dt.date(2026, 11, 20)
        account = AccountFactory(currency="EUR")
        # days past due -> bucket: 0 current, 1 and 30 in 1-30, 31 in 31-60, 91 over 90
        for days, amount in ((0, "1"), (-5, "2"), (1, "4"), (30, "8"), (31, "16"), (91, "32")):
            invoice = make_invoice(account=account, lines=[("1", amount)], state="pending")
            Invoice.objects.filter(pk=invoice.pk).update(
                due_on=today - dt.timedelta(days=days), issued_on=dt.date(2026, 1, 1)
            )
        make_invoice(account=account, lines=[("1", "64")], state="paid")  # not owed
        [row] = ageing_report(today)
        amounts = {cell.label: cell.amount for cell in row.cells}
        assert amounts == {
            "Current": Decimal("3"),
            "1-30 days": Decimal("12"),
            "31-60 days": Decimal("16"),
            "61-90 days": Decimal("0"),
            "Over 90 days": Decimal("32"),
        }
        assert row.amount == Decimal("63") and row.invoices == 6
        one_to_thirty = row.cells[1]
        assert (one_to_thirty.due_from, one_to_thirty.due_until) == (
            dt.date(2026, 10, 21),
            dt.date(2026, 11, 19),
        )

    def test_collected_vs_invoiced_per_month(self, data, now):
        from invoices.staff.selectors import collected_vs_invoiced, last_months

        flows = {flow.currency: flow for flow in collected_vs_invoiced(last_months(now))}
        eur = {item.month: item for item in flows["EUR"].months}
        assert eur[dt.date(2026, 9, 1)].collected == Decimal("100.00")
        assert eur[dt.date(2026, 10, 1)].collected == Decimal("50.00")
        assert sum(item.invoiced for item in eur.values()) == Decimal("150.00")

    def test_a_chosen_range_of_months(self, data, now):
        months = [dt.date(2026, 9, 1), dt.date(2026, 10, 1)]
        board = dashboard_get(now, months=months)
        assert board.months == months
        revenue = {item.currency: dict(item.months) for item in board.revenue}
        assert set(revenue["EUR"]) == set(months)
