"""The billing run bills plans: fees, setup fees and metered usage rated by the plan."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.db import connections

from invoices import services as invoice_services
from invoices.api.v1.serializers import _line_item
from invoices.models import Invoice, LineItem
from tests.factories import AccountFactory
from tests.support.pricing import api_calls, metered, scale_plan
from tests.support.usage import record
from tests.usage.test_billing_run import assert_identities, snapshot
from usage import services
from usage.models import Metric, Plan, UsageRecord
from usage.subscriptions import metric_create, subscription_change_plan, subscription_create
from usage.upcoming import upcoming_invoice

NOV = dt.date(2022, 11, 1)  # 30 days
NOW = dt.datetime(2022, 12, 1, 0, 15, tzinfo=dt.UTC)


def nov(day: int) -> dt.date:
    return dt.date(2022, 11, day)


def bill(**kwargs) -> services.BillingRunResult:
    return services.usage_bill_month(month=NOV, now=NOW, **kwargs)


def prerated(account, client_id: str, cost: str, day: int = 3) -> None:
    services.usage_ingest(
        records=[
            record(id=client_id, service="EC2", region="us-west-1", cost=cost,
                   start_time=f"2022-11-{day:02d}T00:00:00Z",
                   end_time=f"2022-11-{day:02d}T01:00:00Z")
        ],
        account_id=account.pk,
    )  # fmt: skip


def subscribed(account=None, *, start: int = 11, plan=None):
    account = account or AccountFactory(currency="USD", vat_rate=Decimal("21"))
    plan = plan or Plan.objects.filter(code="scale").first() or scale_plan()
    subscription_create(account=account, plan=plan, start_date=nov(start))
    return account


def lines_of(account) -> list[tuple]:
    invoice = Invoice.objects.get(account=account, creation_type="background")
    return [
        (line.source.split(":")[0], line.name, line.quantity, line.unit_price, line.cost)
        for line in invoice.line_items.order_by("id")
    ]


@pytest.mark.django_db
class TestRatedRun:
    def test_done_when_example_fee_and_graduated_usage(self):
        # given 100.00 a month, graduated API calls, subscribed from the 11th of a
        # 30-day month, and 12,000 calls in the subscription's days
        account = subscribed()
        metered(account, nov(11), 5000)
        metered(account, nov(20), 7000)
        # when the month is billed
        result = bill()
        # then 66.67 of fee and 100.00 of usage, one line per tier used
        assert lines_of(account) == [
            ("plan", "Scale plan, 11-30 Nov 2022", 1, Decimal("66.67"), Decimal("66.67")),
            ("charge", "API calls, 0-1,000 x 0.00", 1000, 0, 0),
            ("charge", "API calls, 1,001-10,000 x 0.01", 9000, Decimal("0.01"), Decimal("90.00")),
            ("charge", "API calls, above 10,000 x 0.005", 2000, Decimal("0.005"), Decimal("10.00")),
        ]
        invoice = Invoice.objects.get(account=account)
        assert invoice.cost_without_vat == Decimal("166.67")
        assert_identities(invoice)
        # every metered record is linked to the charge's first line
        first = invoice.line_items.get(source__endswith=":tier1")
        assert set(UsageRecord.objects.values_list("line_item_id", flat=True)) == {first.pk}
        assert result.records_billed == 2
        assert result.amount == {"USD": Decimal("166.67")}
        assert result.unrated == {}

    def test_fees_alone_make_an_invoice(self):
        account = subscribed(start=1)
        bill()
        assert lines_of(account) == [
            ("plan", "Scale plan, 1-30 Nov 2022", 1, Decimal("100.00"), Decimal("100.00"))
        ]

    def test_rerun_changes_nothing_and_new_usage_rerates_the_month(self):
        account = subscribed()
        metered(account, nov(12), 900)
        bill()
        first = snapshot()
        again = bill()
        assert snapshot() == first
        assert (again.invoices_created, again.invoices_updated, again.records_billed) == (0, 0, 0)
        # more usage pushes the month into the second tier: rated on the whole month
        metered(account, nov(13), 1100)
        result = bill()
        assert result.invoices_updated == 1 and result.records_billed == 1
        assert [line[1:] for line in lines_of(account) if line[0] == "charge"] == [
            ("API calls, 0-1,000 x 0.00", 1000, 0, 0),
            ("API calls, 1,001-10,000 x 0.01", 1000, Decimal("0.01"), Decimal("10.00")),
        ]
        assert UsageRecord.objects.filter(line_item__isnull=True).count() == 0

    def test_back_dated_plan_change_removes_the_lines_no_longer_produced(self):
        account = subscribed(start=1)
        metered(account, nov(5), 3000)
        metered(account, nov(25), 4000)
        bill()
        old = list(
            Invoice.objects.get(account=account)
            .line_items.filter(source__startswith="plan:")
            .values_list("pk", flat=True)
        )
        assert len(old) == 1
        # the account moved to another plan from the 16th, decided after the run
        subscription = account.subscriptions.get()
        cheap = scale_plan("cheap", name="Cheap", amount=Decimal("30.00"))
        subscription_change_plan(subscription=subscription, plan=cheap, date=nov(16))
        result = bill()
        invoice = Invoice.objects.get(account=account)
        sources = {line.source for line in invoice.line_items.all()}
        assert not invoice.line_items.filter(pk__in=old).exists()
        assert result.lines_removed >= 1
        names = [line[1] for line in lines_of(account)]
        assert "Scale plan, 1-15 Nov 2022" in names and "Cheap plan, 16-30 Nov 2022" in names
        assert len(sources) == len(names)
        # each record is linked to the line of the plan of its day
        for quantity, plan in (("3000", "Scale"), ("4000", "Cheap")):
            line = UsageRecord.objects.get(quantity=Decimal(quantity)).line_item
            assert line is not None and plan in line.description
        assert_identities(invoice)
        assert bill().invoices_updated == 0

    def test_records_without_a_plan_day_or_charged_metric_stay_unlinked_and_are_reported(self):
        account = subscribed()
        metric_create(code="storage", name="Storage", unit="GB")
        metered(account, nov(3), 500)  # before the subscription
        metered(account, nov(15), 50, metric="storage")  # not charged by the plan
        metered(account, nov(15), 2000)
        result = bill()
        assert result.unrated == {account.pk: 2}
        assert UsageRecord.objects.filter(line_item__isnull=True).count() == 2
        assert result.as_dict()["unrated"] == {str(account.pk): 2}

    def test_plan_currency_other_than_the_account_is_rejected(self):
        account = subscribed()
        other = subscribed()
        type(account).objects.filter(pk=account.pk).update(currency="EUR")
        metered(account, nov(15), 2000)
        result = bill()
        assert "currency" in result.rejected[account.pk]
        assert not Invoice.objects.filter(account=account).exists()
        assert Invoice.objects.filter(account=other).exists()

    def test_invoice_total_limit_rejects_the_account(self):
        account = subscribed(plan=scale_plan("huge", amount=Decimal("999999999999.99")), start=1)
        result = bill()
        assert account.pk in result.rejected
        assert not Invoice.objects.filter(account=account).exists()

    def test_issued_invoice_is_never_touched(self):
        account = subscribed()
        bill()
        invoice_services.invoice_transition(
            invoice=Invoice.objects.get(account=account), to_state="pending", actor="t"
        )
        metered(account, nov(20), 5000)
        result = bill()
        assert account.pk in result.skipped_issued
        assert UsageRecord.objects.get().line_item is None

    def test_upcoming_invoice_equals_what_the_run_bills(self):
        account = subscribed(plan=scale_plan(setup_fee=Decimal("25.00")))
        metered(account, nov(12), 12000)
        prerated(account, "p1", "1.250000")
        prerated(account, "p2", "0.333333", day=20)
        upcoming = upcoming_invoice(account, NOV, now=NOW)
        bill()
        invoice = Invoice.objects.get(account=account)
        billed = list(invoice.line_items.order_by("id"))
        assert [_line_item(line, "USD") | {"id": None} for line in billed] == [
            item | {"id": None} for item in upcoming["line_items"]
        ]
        assert Decimal(str(upcoming["subtotal"])) == invoice.cost_without_vat
        assert Decimal(str(upcoming["tax"])) == invoice.vat_amount
        assert Decimal(str(upcoming["total"])) == invoice.cost
        assert {line.source.split(":")[0] for line in billed} == {
            "plan", "setup", "charge", "usage"
        }  # fmt: skip

    def test_crash_between_batches_then_rerun_equals_a_clean_run(self, monkeypatch):
        accounts = [subscribed() for _ in range(5)]
        for n, account in enumerate(accounts):
            metered(account, nov(12), 1000 * (n + 1))
            prerated(account, f"c{n}", f"{n}.5")
        bill(batch_size=2)
        clean = snapshot()
        Invoice.objects.filter(creation_type="background").delete()
        real_batch = services._bill_accounts
        calls: list[int] = []

        def crash_after_first(*args, **kwargs):
            if calls:
                raise RuntimeError("killed")
            calls.append(1)
            return real_batch(*args, **kwargs)

        monkeypatch.setattr(services, "_bill_accounts", crash_after_first)
        with pytest.raises(RuntimeError):
            bill(batch_size=2)
        assert Invoice.objects.filter(creation_type="background").count() == 2
        monkeypatch.setattr(services, "_bill_accounts", real_batch)
        bill(batch_size=2)
        assert snapshot() == clean

    def test_a_metered_record_arriving_while_the_lines_are_written_is_rated(self, monkeypatch):
        account = subscribed()
        metered(account, nov(12), 900)
        real = services.invoices_upsert_background_lines
        calls: list[object] = []

        def upsert_then_record_arrives(**kwargs):
            written = real(**kwargs)
            if not calls:
                metered(account, nov(13), 600)
            calls.append(kwargs["lines_by_account"])
            return written

        monkeypatch.setattr(
            services, "invoices_upsert_background_lines", upsert_then_record_arrives
        )
        bill()
        assert len(calls) == 2
        charges = [line[1:] for line in lines_of(account) if line[0] == "charge"]
        assert charges[-1] == (
            "API calls, 1,001-10,000 x 0.01",
            500,
            Decimal("0.01"),
            Decimal("5.00"),
        )
        assert UsageRecord.objects.filter(line_item__isnull=True).count() == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_rated_runs_at_once_bill_everything_exactly_once():
    api_calls()
    plan = scale_plan()
    accounts = [subscribed(plan=plan) for _ in range(6)]
    for n, account in enumerate(accounts):
        metered(account, nov(12), 12000)
        prerated(account, f"r{n}", "1.25")
    results, errors = [], []
    barrier = threading.Barrier(2)

    def run():
        try:
            barrier.wait(timeout=10)
            results.append(bill(batch_size=2))
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert sum(r.invoices_created for r in results) == 6
    assert sum(r.records_billed for r in results) == 12
    for invoice in Invoice.objects.filter(creation_type="background"):
        assert invoice.cost_without_vat == Decimal("167.92")  # 66.67 + 100.00 + 1.25
        assert invoice.line_items.count() == 5
        assert_identities(invoice)
    assert UsageRecord.objects.filter(line_item__isnull=True).count() == 0
    assert LineItem.objects.filter(source__startswith="plan:").count() == 6
    assert Metric.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_workers_rate_like_a_serial_run():
    plan = scale_plan()
    accounts = [subscribed(plan=plan, start=n + 1) for n in range(7)]
    for n, account in enumerate(accounts):
        metered(account, nov(20), 500 * n)
    serial = bill(batch_size=2)
    expected = snapshot()
    Invoice.objects.filter(creation_type="background").delete()
    parallel = bill(batch_size=2, workers=3)
    assert snapshot() == expected
    assert parallel.as_dict() == serial.as_dict()
