"""run_billing and import_usage."""

from __future__ import annotations

import io
import sys

import orjson
import pytest
from django.core.management import CommandError, call_command

from invoices.models import Invoice
from tests.support.usage import record
from usage.models import UsageRecord
from usage.services import usage_ingest

CSV = """id,account_id,resource_id,resource_name,service,region,start_time,end_time,duration,cost
c1,{a},i-1,web-1,EC2,us-west-1,2022-01-01T00:00:00Z,2022-01-01T01:00:00Z,,0.50
c2,{a},i-2,db-1,RDS,us-west-1,2022-01-02T00:00:00Z,2022-01-02T01:00:00Z,3600,1.00
c3,{a},i-1,web-1,EC2,us-west-1,2022-01-03T00:00:00Z,2022-01-03T00:30:00Z,,0.25
"""


def run(*args, stdin: bytes | None = None, monkeypatch=None) -> str:
    out = io.StringIO()
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    call_command(*args, "--no-progress", stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.mark.django_db
class TestImportUsage:
    def test_csv_file_in_batches_and_rerun_is_idempotent(self, owner, tmp_path):
        path = tmp_path / "usage.csv"
        path.write_text(CSV.format(a=owner.account.pk))
        out = run("import_usage", str(path), "--batch-size", "2")
        assert "received 3, stored 3, duplicates 0" in out
        assert UsageRecord.objects.get(client_id="c3").duration == 1800
        again = run("import_usage", str(path))
        assert "received 3, stored 0, duplicates 3" in again
        assert UsageRecord.objects.count() == 3

    def test_jsonl_from_stdin_with_implied_account(self, owner, monkeypatch):
        lines = b"\n".join(orjson.dumps(record(id=f"j{n}")) for n in range(5))
        out = run("import_usage", "-", "--account", str(owner.account.pk), stdin=lines,
                  monkeypatch=monkeypatch)  # fmt: skip
        assert "received 5, stored 5, duplicates 0" in out
        assert set(UsageRecord.objects.values_list("account_id", flat=True)) == {owner.account.pk}

    def test_dry_run_stores_nothing(self, owner, tmp_path):
        path = tmp_path / "usage.csv"
        path.write_text(CSV.format(a=owner.account.pk))
        out = run("import_usage", str(path), "--dry-run")
        assert "would store 3" in out
        assert UsageRecord.objects.count() == 0

    def test_bad_batch_stops_with_line_numbers_and_keeps_earlier_batches(self, owner, tmp_path):
        path = tmp_path / "usage.jsonl"
        rows = [record(id="g1"), record(id="g2"), record(id="b1", cost="-3")]
        path.write_bytes(b"\n".join(orjson.dumps(r) for r in rows))
        err = io.StringIO()
        with pytest.raises(CommandError, match="Earlier batches are stored"):
            call_command("import_usage", str(path), "--account", str(owner.account.pk),
                         "--batch-size", "2", "--no-progress", stdout=io.StringIO(), stderr=err)  # fmt: skip
        assert "line 3: cost: must not be negative" in err.getvalue()
        assert UsageRecord.objects.count() == 2

    def test_bad_json_line(self, owner, tmp_path):
        path = tmp_path / "usage.jsonl"
        path.write_text('{"id": "x"}\n{oops\n')
        with pytest.raises(CommandError, match="line 2"):
            run("import_usage", str(path), "--account", str(owner.account.pk))

    def test_missing_file_and_unknown_account(self, tmp_path):
        with pytest.raises(CommandError, match="Cannot read"):
            run("import_usage", str(tmp_path / "nope.csv"))
        with pytest.raises(CommandError, match="does not exist"):
            run("import_usage", "-", "--account", "999999")


@pytest.mark.django_db
class TestRunBilling:
    def test_bills_and_is_idempotent(self, owner):
        usage_ingest(
            records=[record(id="a"), record(id="b", service="RDS")], account_id=owner.account.pk
        )
        out = run("run_billing", "--month", "2022-01")
        assert "1 accounts billed, 1 invoices created" in out
        assert "2 lines created" in out and "2 records billed" in out
        assert "added 1.00 USD" in out
        again = run("run_billing", "--month", "2022-01")
        assert "0 accounts billed" in again
        assert Invoice.objects.filter(creation_type="background").count() == 1

    def test_dry_run(self, owner):
        usage_ingest(records=[record(id="a")], account_id=owner.account.pk)
        out = run("run_billing", "--month", "2022-01", "--dry-run")
        assert out.startswith("[dry run] 2022-01: 1 accounts billed")
        assert not Invoice.objects.exists()

    def test_reports_usage_left_unbilled_by_an_issued_invoice(self, owner):
        usage_ingest(records=[record(id="a")], account_id=owner.account.pk)
        run("run_billing", "--month", "2022-01")
        invoice = Invoice.objects.get()
        Invoice.objects.filter(pk=invoice.pk).update(
            state="pending", friendly_id="2022-01-00000001", issued_on="2022-02-03", due_on="2022-03-05"
        )  # fmt: skip
        UsageRecord.objects.filter(client_id="a").update(line_item=None)
        out = run("run_billing", "--month", "2022-01", "--account", str(owner.account.pk))
        assert f"account {owner.account.pk}: 1 records left unbilled" in out

    @pytest.mark.parametrize("month", ["2022-13", "22-01", "2099-01", "January"])
    def test_bad_month(self, month):
        with pytest.raises(CommandError):
            run("run_billing", "--month", month)
