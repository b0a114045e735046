"""The billing run: usage -> background invoices, idempotent and crash-safe."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from accounts.models import Account
from billing.lib.money import line_cost, quantize, vat_amount
from invoices import services as invoice_services
from invoices.models import Invoice, InvoiceEvent, LineItem
from tests.factories import AccountFactory
from tests.support.usage import record
from usage import services
from usage.exceptions import InvalidBillingMonth
from usage.models import UsageRecord

JAN = dt.date(2022, 1, 1)
NOW = dt.datetime(2022, 2, 1, 0, 15, tzinfo=dt.UTC)


def jan(day: int, hour: int = 0) -> str:
    return f"2022-01-{day:02d}T{hour:02d}:00:00Z"


def add(account: Account, client_id: str, service: str, region: str, cost: str, day: int = 3):
    services.usage_ingest(
        records=[
            record(id=client_id, service=service, region=region, cost=cost,
                   start_time=jan(day), end_time=jan(day, 1))
        ],
        account_id=account.pk,
    )  # fmt: skip


def snapshot() -> list:
    """Everything a billing run decides, in a comparable form."""
    state = []
    for invoice in Invoice.objects.filter(creation_type="background").order_by("account_id"):
        lines = sorted(
            (line.source, line.quantity, line.unit_price, line.cost, line.usage_records.count())
            for line in invoice.line_items.all()
        )
        state.append(
            (
                invoice.account_id, invoice.period, invoice.state, invoice.currency,
                invoice.cost_without_vat, invoice.vat_amount, invoice.cost, lines,
            )
        )  # fmt: skip
    unbilled = UsageRecord.objects.filter(line_item__isnull=True).count()
    return [state, unbilled]


def assert_identities(invoice: Invoice) -> None:
    lines = list(invoice.line_items.all())
    for line in lines:
        assert line.cost == line_cost(line.quantity, line.unit_price, invoice.currency)
    assert invoice.cost_without_vat == quantize(sum(line.cost for line in lines), invoice.currency)
    assert invoice.vat_amount == vat_amount(
        invoice.cost_without_vat, invoice.vat_rate, invoice.currency
    )
    assert invoice.cost == invoice.cost_without_vat + invoice.vat_amount


@pytest.fixture
def accounts():
    usd = AccountFactory(org_name="Usd", currency="USD", vat_rate=Decimal("21"))
    jpy = AccountFactory(org_name="Yen", currency="JPY", vat_rate=Decimal("10"))
    add(usd, "u1", "EC2", "us-west-1", "0.500000")
    add(usd, "u2", "EC2", "us-west-1", "0.254321")
    add(usd, "u3", "RDS", "us-west-1", "1.000001")
    add(usd, "u4", "EC2", "eu-west-1", "0.333333")
    add(jpy, "y1", "S3", "ap-northeast-1", "120.6")
    # Outside the month: never billed by the January run.
    services.usage_ingest(
        records=[record(id="feb", start_time="2022-02-01T00:00:00Z", end_time="2022-02-01T01:00:00Z")],
        account_id=usd.pk,
    )  # fmt: skip
    return usd, jpy


def bill(**kwargs) -> services.BillingRunResult:
    return services.usage_bill_month(month=JAN, now=NOW, **kwargs)


@pytest.mark.django_db
class TestBillingRun:
    def test_one_invoice_per_account_one_line_per_service_and_region(self, accounts):
        usd, jpy = accounts
        result = bill()
        assert (result.accounts, result.invoices_created, result.lines_created) == (2, 2, 4)
        assert result.records_billed == 5
        invoice = Invoice.objects.get(account=usd)
        assert (invoice.creation_type, invoice.state, invoice.period) == ("background", "open", JAN)
        lines = {line.source: line for line in invoice.line_items.all()}
        assert set(lines) == {"usage:EC2:us-west-1", "usage:RDS:us-west-1", "usage:EC2:eu-west-1"}
        ec2 = lines["usage:EC2:us-west-1"]
        assert (ec2.type, ec2.quantity, ec2.unit_price, ec2.cost) == (
            "usage", Decimal("1"), Decimal("0.754321"), Decimal("0.75")
        )  # fmt: skip
        assert set(ec2.usage_records.values_list("client_id", flat=True)) == {"u1", "u2"}
        assert invoice.cost_without_vat == Decimal("2.08")  # 0.75 + 1.00 + 0.33
        assert invoice.vat_amount == Decimal("0.44")
        assert invoice.cost == Decimal("2.52")
        assert_identities(invoice)
        yen = Invoice.objects.get(account=jpy)
        assert yen.cost_without_vat == Decimal("121") and yen.cost == Decimal("133")
        assert_identities(yen)
        kinds = list(invoice.events.values_list("kind", "actor"))
        assert kinds == [("created", "system:billing_run"), ("line_added", "system:billing_run")]
        assert UsageRecord.objects.get(client_id="feb").line_item is None
        assert result.amount == {"USD": Decimal("2.08"), "JPY": Decimal("121")}

    def test_running_twice_changes_nothing(self, accounts):
        bill()
        before = snapshot()
        events = InvoiceEvent.objects.count()
        again = bill()
        assert (again.accounts, again.invoices_created, again.records_billed) == (0, 0, 0)
        assert snapshot() == before
        assert InvoiceEvent.objects.count() == events

    def test_rerun_adds_new_usage_to_the_open_invoice(self, accounts):
        usd, _ = accounts
        bill()
        add(usd, "u5", "EC2", "us-west-1", "0.245679")  # same line: 0.754321 -> 1.000000
        add(usd, "u6", "Lambda", "us-west-1", "0.01")  # a new line
        result = bill()
        assert (result.invoices_created, result.invoices_updated) == (0, 1)
        assert (result.lines_created, result.lines_updated, result.records_billed) == (1, 1, 2)
        invoice = Invoice.objects.get(account=usd)
        ec2 = invoice.line_items.get(source="usage:EC2:us-west-1")
        assert (ec2.unit_price, ec2.cost) == (Decimal("1.000000"), Decimal("1.00"))
        assert invoice.line_items.filter(source="usage:Lambda:us-west-1").exists()
        assert invoice.cost_without_vat == Decimal("2.34")
        assert_identities(invoice)
        assert result.amount == {"USD": Decimal("0.26")}
        assert invoice.events.filter(kind="line_added").count() == 2

    def test_manual_lines_count_in_the_totals(self, accounts):
        usd, _ = accounts
        bill()
        invoice = Invoice.objects.get(account=usd)
        invoice_services.line_item_add(
            invoice=invoice, name="Support", unit_price=Decimal("10"), actor="t"
        )
        add(usd, "u7", "EC2", "us-west-1", "1")
        bill()
        invoice.refresh_from_db()
        assert invoice.cost_without_vat == Decimal("13.08")
        assert_identities(invoice)

    def test_finalized_invoice_is_still_extended(self, accounts):
        usd, _ = accounts
        bill()
        invoice = invoice_services.invoice_finalize(
            invoice=Invoice.objects.get(account=usd), actor="t"
        )
        add(usd, "u8", "EC2", "us-west-1", "1")
        assert bill().invoices_updated == 1
        invoice.refresh_from_db()
        assert invoice.state == "finalized" and invoice.cost_without_vat == Decimal("3.08")

    def test_issued_invoice_is_never_touched(self, accounts):
        usd, _ = accounts
        bill()
        invoice = invoice_services.invoice_transition(
            invoice=Invoice.objects.get(account=usd), to_state="pending", actor="t"
        )
        before = (invoice.cost, sorted(invoice.line_items.values_list("source", "cost")))
        # Late usage that slipped in (ingestion refuses it once the invoice is issued).
        UsageRecord.objects.create(
            account=usd, client_id="late", resource_id="r", service="EC2", region="us-west-1",
            start_time=dt.datetime(2022, 1, 9, tzinfo=dt.UTC),
            end_time=dt.datetime(2022, 1, 9, 1, tzinfo=dt.UTC), duration=3600, cost=Decimal("5"),
        )  # fmt: skip
        result = bill()
        assert result.skipped_issued == {usd.pk: 1}
        assert result.invoices_updated == 0
        invoice.refresh_from_db()
        assert (invoice.cost, sorted(invoice.line_items.values_list("source", "cost"))) == before
        assert UsageRecord.objects.get(client_id="late").line_item is None
        assert Invoice.objects.filter(account=usd, creation_type="background").count() == 1

    def test_cancelled_invoice_is_replaced_by_a_new_one(self, accounts):
        usd, _ = accounts
        bill()
        old = Invoice.objects.get(account=usd)
        # Cancelling keeps the lines and their records; new usage goes to a new invoice.
        invoice_services.invoice_cancel(invoice=old, actor="t")
        add(usd, "u9", "EC2", "us-west-1", "1")
        assert bill().invoices_created == 1
        new = Invoice.objects.get(account=usd, state="open")
        assert new.cost_without_vat == Decimal("1.00")

    def test_deleted_accounts_are_not_billed(self, accounts):
        usd, jpy = accounts
        Account.objects.filter(pk=jpy.pk).update(state="deleted", deleted_at=NOW)
        result = bill()
        assert result.skipped_unbillable == {jpy.pk: 1}
        assert not Invoice.objects.filter(account=jpy).exists()
        assert Invoice.objects.filter(account=usd).exists()

    def test_suspended_accounts_are_billed_like_invoice_create_allows(self, accounts):
        # One rule for "billable": a suspended account still owes what it used.
        usd, jpy = accounts
        Account.objects.filter(pk=jpy.pk).update(state="suspended")
        result = bill()
        assert result.skipped_unbillable == {}
        assert Invoice.objects.get(account=jpy).cost_without_vat == Decimal("121")

    def test_one_account(self, accounts):
        usd, jpy = accounts
        result = bill(account_id=jpy.pk)
        assert result.accounts == 1
        assert not Invoice.objects.filter(account=usd).exists()

    def test_dry_run_reports_and_writes_nothing(self, accounts):
        dry = bill(dry_run=True)
        assert (dry.accounts, dry.invoices_created, dry.records_billed) == (2, 2, 5)
        assert not Invoice.objects.filter(creation_type="background").exists()
        assert UsageRecord.objects.filter(line_item__isnull=False).count() == 0
        real = bill()
        assert real.as_dict() | {"dry_run": True} == dry.as_dict()

    def test_crash_between_batches_then_rerun_equals_a_clean_run(self, accounts, monkeypatch):
        extra = [AccountFactory() for _ in range(3)]
        for n, account in enumerate(extra):
            add(account, f"e{n}", "EC2", "us-west-1", f"{n + 1}.5")
        bill(batch_size=2)
        clean = snapshot()
        # Reset: drop the background invoices (their lines go, records become unbilled).
        Invoice.objects.filter(creation_type="background").delete()
        assert UsageRecord.objects.filter(line_item__isnull=False).count() == 0

        real_batch = services._bill_accounts
        calls: list[object] = []

        def crash_after_first(*args, **kwargs):
            if calls:
                raise RuntimeError("killed")
            calls.append(1)
            return real_batch(*args, **kwargs)

        monkeypatch.setattr(services, "_bill_accounts", crash_after_first)
        with pytest.raises(RuntimeError):
            bill(batch_size=2)
        assert Invoice.objects.filter(creation_type="background").count() == 2  # one batch done
        monkeypatch.setattr(services, "_bill_accounts", real_batch)
        bill(batch_size=2)
        assert snapshot() == clean

    def test_a_record_arriving_while_the_lines_are_written_is_billed_exactly(
        self, accounts, monkeypatch
    ):
        # given a record that lands after the usage was totalled but before the
        # records are linked (another connection's commit, here the same one)
        usd, _ = accounts
        real = services.invoices_upsert_background_lines
        calls: list[dict] = []

        def upsert_then_record_arrives(**kwargs):
            written = real(**kwargs)
            if not calls:
                UsageRecord.objects.create(
                    account=usd, client_id="racer", resource_id="r", service="EC2",
                    region="us-west-1", start_time=dt.datetime(2022, 1, 5, tzinfo=dt.UTC),
                    end_time=dt.datetime(2022, 1, 5, 1, tzinfo=dt.UTC), duration=3600,
                    cost=Decimal("2"),
                )  # fmt: skip
            calls.append(kwargs["lines_by_account"])
            return written

        monkeypatch.setattr(
            services, "invoices_upsert_background_lines", upsert_then_record_arrives
        )
        # when the month is billed
        result = bill()
        # then the racer is linked and its line corrected in the same run
        assert len(calls) == 2 and list(calls[1]) == [usd.pk]
        invoice = Invoice.objects.get(account=usd)
        ec2 = invoice.line_items.get(source="usage:EC2:us-west-1")
        assert ec2.unit_price == Decimal("2.754321")
        assert ec2.usage_records.count() == 3
        assert invoice.cost_without_vat == Decimal("4.08")
        assert_identities(invoice)
        assert result.records_billed == 6
        assert result.amount["USD"] == Decimal("4.08")

    def test_month_bounds(self):
        with pytest.raises(InvalidBillingMonth):
            services.usage_bill_month(month=dt.date(2099, 1, 1))
        with pytest.raises(InvalidBillingMonth):
            services.usage_bill_month(month=dt.date(1999, 12, 1))

    def test_a_record_on_the_last_second_belongs_to_its_month(self, accounts):
        usd, _ = accounts
        services.usage_ingest(
            records=[record(id="edge", start_time="2022-01-31T23:59:59Z", end_time="2022-02-01T00:00:59Z", cost="1")],
            account_id=usd.pk,
        )  # fmt: skip
        bill()
        assert UsageRecord.objects.get(client_id="edge").line_item is not None
        assert LineItem.objects.filter(invoice__account=usd).count() == 3


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_bill_everything_exactly_once():
    import threading

    from django.db import connections

    # given: usage of six accounts
    accounts = [AccountFactory() for _ in range(6)]
    for n, account in enumerate(accounts):
        add(account, f"p{n}", "EC2", "us-west-1", "1.25")
        add(account, f"q{n}", "RDS", "eu-west-1", "0.75")
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

    # when: two runs race over the same accounts
    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    # then: the account locks serialise them; every record is billed once
    assert errors == []
    assert sum(r.records_billed for r in results) == 12
    assert sum(r.invoices_created for r in results) == 6
    for invoice in Invoice.objects.filter(creation_type="background"):
        assert invoice.cost_without_vat == Decimal("2.00")
        assert_identities(invoice)
    assert UsageRecord.objects.filter(line_item__isnull=True).count() == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_workers_end_like_a_serial_run():
    accounts = [AccountFactory() for _ in range(7)]
    for n, account in enumerate(accounts):
        add(account, f"s{n}", "EC2", "us-west-1", f"{n}.10")
        add(account, f"t{n}", "S3", "us-east-1", "0.05")
    serial = bill(batch_size=2)
    expected = snapshot()
    Invoice.objects.filter(creation_type="background").delete()
    parallel = bill(batch_size=2, workers=3)
    assert snapshot() == expected
    assert parallel.as_dict() == serial.as_dict()
