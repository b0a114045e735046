"""The staff dashboard: figures per currency from a handful of GROUP BY queries, SVG charts."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.urls import reverse

from billing.lib.charts import Bar, bar_list_chart, column_chart
from invoices import services
from invoices.dashboard import dashboard_get
from invoices.exceptions import ChargeFailed
from tests.factories import AccountFactory, make_invoice
from usage.models import UsageRecord

NOW = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)
DASHBOARD = reverse("staff:dashboard")


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def data(db):
    eur = AccountFactory(org_name="Euro Co", currency="EUR")
    usd = AccountFactory(org_name="Dollar Inc", currency="USD")
    declined = AccountFactory(org_name="Broke LLC", currency="USD", card_token="tok_chargeDeclined")
    sep = dt.datetime(2026, 9, 5, tzinfo=dt.UTC)
    oct_ = dt.datetime(2026, 10, 5, tzinfo=dt.UTC)
    # paid in September and October (EUR), October (USD)
    for when, lines in ((sep, [("1", "100.00")]), (oct_, [("1", "50.00")])):
        invoice = make_invoice(account=eur, lines=lines, state="pending", now=when)
        services.invoice_mark_paid(invoice=invoice, actor="t", reference="r", now=when)
    invoice = make_invoice(account=usd, lines=[("2", "30.00")], state="pending", now=oct_)
    services.invoice_mark_paid(invoice=invoice, actor="t", reference="r", now=oct_)
    # outstanding: one overdue (issued 60 days ago), one not yet due
    make_invoice(
        account=usd, lines=[("1", "70.00")], state="pending", now=NOW - dt.timedelta(days=60)
    )
    make_invoice(
        account=usd, lines=[("1", "5.00")], state="pending", now=NOW - dt.timedelta(days=2)
    )
    # a declined charge ten days ago
    failing = make_invoice(account=declined, lines=[("1", "9.99")], state="pending", now=NOW)
    with pytest.raises(ChargeFailed):
        services.invoice_charge(invoice=failing, actor="t", now=NOW - dt.timedelta(days=10))
    # usage in the last 30 days and older
    for n, (service, cost, days_ago) in enumerate(
        [("EC2", "1.50", 3), ("EC2", "2.25", 10), ("S3", "0.40", 5), ("EC2", "99", 45)]
    ):
        start = NOW - dt.timedelta(days=days_ago)
        UsageRecord.objects.create(
            account=usd, client_id=f"u{n}", resource_id="r", service=service, region="eu",
            start_time=start, end_time=start + dt.timedelta(hours=1), duration=3600,
            cost=Decimal(cost),
        )  # fmt: skip
    return eur, usd, declined


@pytest.mark.django_db
class TestFigures:
    def test_revenue_per_month_per_currency(self, data):
        board = dashboard_get(NOW)
        assert len(board.months) == 12
        assert board.months[-1] == dt.date(2026, 11, 1)
        revenue = {item.currency: dict(item.months) for item in board.revenue}
        assert revenue["EUR"][dt.date(2026, 9, 1)] == Decimal("100.00")
        assert revenue["EUR"][dt.date(2026, 10, 1)] == Decimal("50.00")
        assert revenue["EUR"][dt.date(2026, 11, 1)] == Decimal("0")
        assert revenue["USD"][dt.date(2026, 10, 1)] == Decimal("60.00")

    def test_outstanding_and_overdue(self, data):
        board = dashboard_get(NOW)
        usd = {row.currency: row for row in board.outstanding}["USD"]
        # 70 (overdue) + 5 (not due) + 9.99 (declined, not yet due)
        assert usd.amount == Decimal("84.99") and usd.invoices == 3
        assert usd.overdue_amount == Decimal("70.00") and usd.overdue_invoices == 1

    def test_failed_payments_last_30_days(self, data):
        [row] = dashboard_get(NOW).failed_payments
        assert (row.currency, row.attempts, row.amount, row.invoices) == (
            "USD",
            1,
            Decimal("9.99"),
            1,
        )

    def test_top_accounts_and_usage_by_service(self, data):
        board = dashboard_get(NOW)
        assert [(a.org_name, a.revenue) for a in board.top_accounts["EUR"]] == [
            ("Euro Co", Decimal("150.00"))
        ]
        usage = {(row.service, row.currency): row for row in board.usage}
        assert usage[("EC2", "USD")].cost == Decimal("3.75")  # the 45-day-old record is out
        assert usage[("EC2", "USD")].records == 2
        assert usage[("S3", "USD")].cost == Decimal("0.40")

    def test_queries_are_a_handful_whatever_the_data(self, data, django_assert_max_num_queries):
        with django_assert_max_num_queries(8):
            dashboard_get(NOW)


@pytest.mark.django_db
class TestPage:
    def test_staff_sees_charts(self, client, staff_user, data):
        client.force_login(staff_user)
        with time_machine.travel(NOW, tick=False):
            response = client.get(DASHBOARD)
        assert response.status_code == 200
        body = response.content.decode()
        assert body.count("<svg") >= 3
        assert "Revenue per month, EUR" in body
        assert "Euro Co" in body
        assert "EC2 (USD)" in body
        assert "http://" not in body.replace('xmlns="http://www.w3.org/2000/svg"', "")  # no CDN

    def test_auditor_can_view(self, client, django_user_model, db):
        user = django_user_model.objects.create_user("aud", password="pw-123456789", is_staff=True)
        user.groups.add(Group.objects.get(name="Auditor"))
        client.force_login(user)
        assert client.get(DASHBOARD).status_code == 200

    def test_staff_without_invoice_permission_is_refused(self, client, django_user_model, db):
        user = django_user_model.objects.create_user("s", password="pw-123456789", is_staff=True)
        client.force_login(user)
        assert client.get(DASHBOARD).status_code == 403

    def test_non_staff_is_redirected(self, client, django_user_model, db):
        user = django_user_model.objects.create_user("n", password="pw-123456789")
        client.force_login(user)
        response = client.get(DASHBOARD)
        assert response.status_code == 302 and "/admin/login/" in response["Location"]

    def test_empty_database(self, client, staff_user):
        client.force_login(staff_user)
        response = client.get(DASHBOARD)
        assert response.status_code == 200
        assert b"No paid invoices" in response.content


def test_charts_escape_labels_and_handle_empty_data():
    svg = column_chart([Bar("<script>", Decimal("12.5"))], title='Rev "x" <b>')
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert "<b>" not in svg
    assert "No data" in column_chart([], title="t")
    assert "No data" in bar_list_chart([], title="t")
    listing = bar_list_chart([Bar("A", Decimal("3")), Bar("B", Decimal("1"))], title="t")
    assert listing.count('class="bar"') == 2
