"""Monthly partitions of the usage records (PostgreSQL) and the uniqueness of their ids."""

from __future__ import annotations

import datetime as dt
import importlib
import threading

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, connections, transaction

from invoices.models import Invoice, LineItem
from tests.support.usage import record
from usage import partitions
from usage.models import UsageRecord
from usage.services import usage_ingest
from usage.tasks import usage_ensure_partitions_task

postgres = pytest.mark.postgres


def _where(client_id: str) -> str:
    """The table (partition) that holds the record."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text FROM usage_usagerecord WHERE client_id = %s",
            [client_id],
        )
        return cursor.fetchone()[0]


def _keys() -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {partitions.KEYS_TABLE}")
        return cursor.fetchone()[0]


def _stamp(day: dt.date) -> str:
    return f"{day:%Y-%m-%d}T10:00:00Z"


def _record_on(day: dt.date, **overrides) -> dict:
    return record(start_time=_stamp(day), end_time=f"{day:%Y-%m-%d}T11:00:00Z", **overrides)


@postgres
@pytest.mark.django_db
class TestPartitions:
    def test_records_land_in_their_months_partition_or_the_default(self, owner):
        # given: partitions exist for this month and the next two (the migration made them)
        today = dt.datetime.now(dt.UTC).date()
        months = partitions.month_partitions()
        assert {partitions.partition_name(today.replace(day=1))} <= set(months.values())
        # when: one record this month, one in a month far ahead without a partition
        usage_ingest(records=[_record_on(today, id="now")], account_id=owner.account.pk)
        usage_ingest(
            records=[_record_on(dt.date(2031, 5, 3), id="later")], account_id=owner.account.pk
        )
        # then
        assert _where("now") == partitions.partition_name(today)
        assert _where("later") == partitions.DEFAULT_PARTITION

    def test_ensure_makes_the_months_ahead_and_moves_waiting_records_in(self, owner):
        # given: two records of a month without a partition, waiting in the DEFAULT one
        usage_ingest(
            records=[_record_on(dt.date(2031, 5, 3), id=f"w{n}") for n in range(2)],
            account_id=owner.account.pk,
        )
        # when: the daily task runs (as of 2031-01-15, three months ahead)
        result = partitions.partitions_ensure(today=dt.date(2031, 1, 15), ahead=3)
        # then: January to April 2031 and May (for the waiting records) exist
        assert result.created == [f"usage_usagerecord_p2031_{m:02d}" for m in range(1, 6)]
        assert result.moved_from_default == 2
        assert _where("w0") == "usage_usagerecord_p2031_05"
        assert UsageRecord.objects.filter(client_id__in=["w0", "w1"]).count() == 2
        # and the ids are still taken (their keys stayed)
        again = usage_ingest(
            records=[_record_on(dt.date(2031, 5, 3), id="w0")], account_id=owner.account.pk
        )
        assert (again.stored, again.duplicates) == (0, 1)
        # and a second run has nothing to do
        assert partitions.partitions_ensure(today=dt.date(2031, 1, 15), ahead=3).created == []

    def test_the_task_ensures_this_month_and_two_ahead(self, db):
        result = usage_ensure_partitions_task.delay().get()
        assert result["moved_from_default"] == 0
        today = dt.datetime.now(dt.UTC).date().replace(day=1)
        names = set(partitions.month_partitions().values())
        for n in range(3):
            month = dt.date(
                today.year + (today.month - 1 + n) // 12, (today.month - 1 + n) % 12 + 1, 1
            )
            assert partitions.partition_name(month) in names

    def test_a_report_or_billing_query_of_one_month_reads_one_partition(self, owner):
        today = dt.datetime.now(dt.UTC).date()
        qs = UsageRecord.objects.of_month(today).filter(account_id=owner.account.pk)
        plan = qs.explain()
        assert partitions.partition_name(today) in plan
        assert partitions.DEFAULT_PARTITION not in plan
        assert "_p2026_01" not in plan.replace(partitions.partition_name(today), "")


@postgres
@pytest.mark.django_db
class TestIdsStayUniqueAcrossMonths:
    def test_ingesting_an_id_again_in_another_month_is_a_duplicate(self, owner):
        usage_ingest(records=[_record_on(dt.date(2026, 1, 5), id="x")], account_id=owner.account.pk)
        again = usage_ingest(
            records=[_record_on(dt.date(2026, 3, 5), id="x")], account_id=owner.account.pk
        )
        assert (again.stored, again.duplicates) == (0, 1)
        assert UsageRecord.objects.filter(client_id="x").count() == 1

    def test_a_direct_insert_of_a_taken_id_is_refused_by_the_constraint(self, owner):
        usage_ingest(records=[_record_on(dt.date(2026, 1, 5), id="x")], account_id=owner.account.pk)
        with pytest.raises(IntegrityError, match=partitions.KEYS_CONSTRAINT):
            with transaction.atomic():
                UsageRecord.objects.create(
                    account=owner.account,
                    client_id="x",
                    resource_id="r",
                    service="EC2",
                    region="eu",
                    start_time=dt.datetime(2026, 4, 1, tzinfo=dt.UTC),
                    end_time=dt.datetime(2026, 4, 1, tzinfo=dt.UTC),
                    duration=0,
                    cost=1,
                )
        assert _keys() == 1

    def test_deleting_records_frees_their_ids_and_truncate_empties_the_keys(self, owner):
        usage_ingest(
            records=[_record_on(dt.date(2026, 1, 5), id=f"d{n}") for n in range(3)],
            account_id=owner.account.pk,
        )
        UsageRecord.objects.filter(client_id="d0").delete()
        assert _keys() == 2
        again = usage_ingest(
            records=[_record_on(dt.date(2026, 2, 5), id="d0")], account_id=owner.account.pk
        )
        assert again.stored == 1
        with connection.cursor() as cursor:
            # (the test's transaction still holds deferred foreign-key checks)
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("TRUNCATE usage_usagerecord")
        assert _keys() == 0

    def test_a_records_account_and_id_cannot_change(self, owner):
        usage_ingest(records=[_record_on(dt.date(2026, 1, 5), id="k")], account_id=owner.account.pk)
        with pytest.raises(IntegrityError, match="cannot change"):
            with transaction.atomic():
                UsageRecord.objects.filter(client_id="k").update(client_id="k2")
        # other columns change as before (the billing run links records to lines)
        assert UsageRecord.objects.filter(client_id="k").update(resource_name="renamed") == 1

    def test_dry_run_counts_taken_ids_from_the_keys(self, owner):
        usage_ingest(records=[_record_on(dt.date(2026, 1, 5), id="t")], account_id=owner.account.pk)
        result = usage_ingest(
            records=[_record_on(dt.date(2026, 5, 5), id="t"), _record_on(dt.date(2026, 5, 5))],
            account_id=owner.account.pk,
            dry_run=True,
        )
        assert (result.stored, result.duplicates) == (1, 1)

    def test_a_write_after_ingestion_in_the_same_transaction_is_checked(self, owner):
        with pytest.raises(IntegrityError, match=partitions.KEYS_CONSTRAINT):
            with transaction.atomic():
                usage_ingest(
                    records=[_record_on(dt.date(2026, 1, 5), id="s")], account_id=owner.account.pk
                )
                UsageRecord.objects.create(
                    account=owner.account,
                    client_id="s",
                    resource_id="r",
                    service="EC2",
                    region="eu",
                    start_time=dt.datetime(2026, 4, 1, tzinfo=dt.UTC),
                    end_time=dt.datetime(2026, 4, 1, tzinfo=dt.UTC),
                    duration=0,
                    cost=1,
                )


def _deliver_in_threads(owner, first_batch, second_batch, *, first_commits: bool):
    """The first batch is ingested and held uncommitted while the second one, sent
    meanwhile on another connection, waits; then the first commits or rolls back."""
    ingested = threading.Event()
    results: dict[str, object] = {}

    class Abort(Exception):
        pass

    def first():
        try:
            with transaction.atomic():
                results["first"] = usage_ingest(records=first_batch, account_id=owner.account.pk)
                ingested.set()
                # Give the second delivery time to reach the keys this one holds.
                second_thread.join(timeout=1.5)
                if not first_commits:
                    raise Abort
        except Abort:
            results["first"] = "rolled back"
        finally:
            ingested.set()
            connections.close_all()

    def second():
        try:
            ingested.wait(timeout=20)
            results["second"] = usage_ingest(records=second_batch, account_id=owner.account.pk)
        finally:
            connections.close_all()

    first_thread = threading.Thread(target=first)
    second_thread = threading.Thread(target=second)
    first_thread.start()
    second_thread.start()
    first_thread.join(timeout=60)
    second_thread.join(timeout=60)
    return results


@postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("first_commits", [True, False])
def test_overlapping_batches_in_different_months_and_orders_store_each_id_once(
    owner, first_commits
):
    # given: the same ids sent in two months (so two partitions), the second batch in
    # reverse order, while the first batch is still uncommitted
    january = [_record_on(dt.date(2026, 1, 5), id=f"c{n}") for n in range(0, 400)]
    march = [_record_on(dt.date(2026, 3, 5), id=f"c{n}") for n in reversed(range(200, 600))]
    # when
    results = _deliver_in_threads(owner, january, march, first_commits=first_commits)
    # then: the second delivery waited for the first, and each id is stored once
    second = results["second"]
    if first_commits:
        assert (results["first"].stored, second.stored, second.duplicates) == (400, 200, 200)
        assert UsageRecord.objects.count() == 600
        assert UsageRecord.objects.filter(start_time__month=3).count() == 200
    else:
        assert results["first"] == "rolled back"
        assert (second.stored, second.duplicates) == (400, 0)
        assert UsageRecord.objects.count() == 400
    assert _keys() == UsageRecord.objects.count()
    assert UsageRecord.objects.values("account_id", "client_id").distinct().count() == (
        UsageRecord.objects.count()
    )


@postgres
@pytest.mark.django_db
class TestDetach:
    def _billed_month(self, owner, month: dt.date, ids: list[str]) -> None:
        usage_ingest(records=[_record_on(month, id=i) for i in ids], account_id=owner.account.pk)
        invoice = Invoice.objects.create(
            account=owner.account,
            period=month,
            creation_type=Invoice.CreationType.BACKGROUND,
            currency=owner.account.currency,
        )
        line = LineItem.objects.create(
            invoice=invoice, name="usage", quantity=1, unit_price=1, cost=1
        )
        UsageRecord.objects.filter(client_id__in=ids).update(line_item=line)

    def test_detach_refuses_unbilled_months_then_detaches_with_force(self, owner):
        partitions.partitions_ensure(today=dt.date(2026, 1, 1), ahead=1)
        usage_ingest(records=[_record_on(dt.date(2026, 1, 9), id="u")], account_id=owner.account.pk)
        with pytest.raises(CommandError, match="1 unbilled records"):
            call_command("usage_partitions", detach_before=dt.date(2026, 2, 1))
        call_command("usage_partitions", detach_before=dt.date(2026, 2, 1), force=True)
        assert not UsageRecord.objects.filter(client_id="u").exists()
        assert dt.date(2026, 1, 1) not in partitions.month_partitions()

    def test_a_billed_month_detaches_and_its_ids_stay_taken(self, owner):
        partitions.partitions_ensure(today=dt.date(2026, 1, 1), ahead=1)
        self._billed_month(owner, dt.date(2026, 1, 1), ["b1", "b2"])
        result = partitions.partitions_detach(before=dt.date(2026, 2, 1))
        assert result.detached == ["usage_usagerecord_p2026_01"]
        assert result.records == 2
        with connection.cursor() as cursor:
            # a plain table now, to archive
            cursor.execute("SELECT count(*) FROM usage_usagerecord_p2026_01")
            assert cursor.fetchone()[0] == 2
        assert not UsageRecord.objects.filter(client_id="b1").exists()
        again = usage_ingest(
            records=[_record_on(dt.date(2026, 2, 2), id="b1")], account_id=owner.account.pk
        )
        assert again.duplicates == 1

    def test_drop_removes_the_detached_table(self, owner):
        partitions.partitions_ensure(today=dt.date(2026, 1, 1), ahead=0)
        result = partitions.partitions_detach(before=dt.date(2026, 2, 1), drop=True)
        assert result.dropped == ["usage_usagerecord_p2026_01"]
        with connection.cursor() as cursor:
            cursor.execute("SELECT to_regclass('usage_usagerecord_p2026_01')")
            assert cursor.fetchone()[0] is None

    def test_the_current_month_cannot_be_detached(self, db):
        today = dt.datetime.now(dt.UTC).date()
        nxt = (today.replace(day=28) + dt.timedelta(days=5)).replace(day=1)
        with pytest.raises(partitions.PartitionRefused, match="after the current month"):
            partitions.partitions_detach(before=nxt)

    def test_the_command_lists_and_ensures(self, db, capsys):
        call_command("usage_partitions", ensure=True)
        out = capsys.readouterr().out
        assert "Created:" in out
        assert partitions.DEFAULT_PARTITION in out


@postgres
@pytest.mark.django_db(transaction=True)
def test_the_migration_converts_a_table_with_records_and_back(owner):
    migration = importlib.import_module("usage.migrations.0005_partition_usage_by_month")
    usage_ingest(
        records=[
            _record_on(dt.date(2025, 7, 5), id="m1"),
            _record_on(dt.date(2026, 2, 5), id="m2"),
        ],
        account_id=owner.account.pk,
    )
    with connection.schema_editor() as editor:
        migration.unpartition(None, editor)
    assert not partitions.is_partitioned()
    assert UsageRecord.objects.count() == 2
    with connection.schema_editor() as editor:
        migration.partition(None, editor)
    assert partitions.is_partitioned()
    assert _where("m1") == "usage_usagerecord_p2025_07"
    assert _keys() == 2
    # ids continue after the copied ones
    last = UsageRecord.objects.order_by("-id").first().id
    usage_ingest(records=[_record_on(dt.date(2026, 2, 6), id="m3")], account_id=owner.account.pk)
    assert UsageRecord.objects.get(client_id="m3").id > last
    again = usage_ingest(
        records=[_record_on(dt.date(2026, 2, 6), id="m1")], account_id=owner.account.pk
    )
    assert again.duplicates == 1


@pytest.mark.django_db
def test_on_sqlite_there_is_one_table_and_the_command_says_so(is_postgres):
    if is_postgres:
        pytest.skip("SQLite behaviour")
    assert partitions.partitions_ensure().created == []
    assert partitions.month_partitions() == {}
    with pytest.raises(CommandError, match="only PostgreSQL partitions them"):
        call_command("usage_partitions")
