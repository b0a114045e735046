"""Usage at scale on PostgreSQL: the report of one account's month, and the billing run.

Data is generated inside PostgreSQL with generate_series (accounts through one
bulk insert). Each sub-command wipes the usage and billing data of the
database named by DATABASE_URL first, so point it at a scratch database.

    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/usage_scratch DEBUG=1
    python bench/usage_scale.py report --records 3000000 --accounts 1000
    python bench/usage_scale.py billing --records 1000000 --accounts 10000

`report` times one account's month (total, grouped by service, the first page
of raw rows and its count) with the covering index, then with a plain
(account_id, start_time) index for comparison. `billing` times one billing run
over a month of unbilled usage, then a second run (nothing left to bill).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing.settings")
os.environ.setdefault("DEBUG", "1")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.models import Account  # noqa: E402
from billing.lib.months import add_months, month_bounds, month_end, previous_month  # noqa: E402
from invoices.models import Invoice  # noqa: E402
from usage import selectors, services  # noqa: E402

MONTHS = 10


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _backend_cpu() -> float:
    """CPU seconds used so far by this connection's PostgreSQL backend process."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu() -> float:
    """CPU seconds of this process plus its database backend: the work itself,
    whatever else the machine is running."""
    times = os.times()
    return times.user + times.system + _backend_cpu()


def _load() -> str:
    return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"


def _reset(accounts: int) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE usage_usagerecord")
    Invoice.objects.filter(account__org_name__startswith="Scale ").delete()
    Account.objects.filter(org_name__startswith="Scale ").delete()
    Account.objects.bulk_create(
        Account(org_name=f"Scale {n:05d}", currency="USD") for n in range(accounts)
    )
    return list(
        Account.objects.filter(org_name__startswith="Scale ")
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def _generate(records: int, account_ids: list[int], start: dt.datetime, seconds: int) -> float:
    """`records` rows spread evenly over the accounts and over [start, start + seconds)."""
    began = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO usage_usagerecord (account_id, client_id, resource_id, resource_name,
                service, region, start_time, end_time, duration, cost)
            SELECT ids[1 + g %% cardinality(ids)], 'g' || g, 'i-' || (g %% 997), 'web-' || (g %% 13),
                (ARRAY['EC2', 'RDS', 'S3', 'Lambda'])[1 + (g / cardinality(ids)) %% 4],
                (ARRAY['us-west-1', 'us-east-1', 'eu-west-1'])[1 + (g / cardinality(ids) / 4) %% 3],
                %(start)s + ((g * 7919::bigint) %% %(seconds)s) * interval '1 second',
                %(start)s + ((g * 7919::bigint) %% %(seconds)s + 600) * interval '1 second',
                600, ((g %% 100000) / 100000.0)::numeric(18, 6)
            FROM generate_series(1, %(records)s) AS g, (SELECT %(ids)s::bigint[] AS ids) AS a
            """,
            {"ids": account_ids, "start": start, "seconds": seconds, "records": records},
        )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE usage_usagerecord")
    return time.perf_counter() - began


def _time_report(account_ids: list[int], month: dt.date, runs: int) -> list[float]:
    query = selectors.UsageReportQuery(
        start_date=month,
        end_date=month_end(month),
    )
    timings = []
    for n in range(runs):
        account = account_ids[(n * 37) % len(account_ids)]
        began = time.perf_counter()
        qs = selectors.usage_report_queryset(query, account_ids=[account])
        selectors.usage_report_total(qs)
        list(selectors.usage_report_rows(qs, group_by="service"))
        rows = selectors.usage_report_rows(qs, group_by=None)
        rows.count()
        list(rows[:100])
        timings.append((time.perf_counter() - began) * 1000)
    return timings


def _summary(timings: list[float]) -> str:
    ordered = sorted(timings)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    return f"p50 {statistics.median(ordered):.1f} ms, p95 {p95:.1f} ms, max {ordered[-1]:.1f} ms"


def report(args) -> None:
    call_command("migrate", verbosity=0)
    ids = _reset(args.accounts)
    today = timezone.now().date()
    first = add_months(today, -MONTHS)
    start = dt.datetime(first.year, first.month, 1, tzinfo=dt.UTC)
    end = dt.datetime(today.year, today.month, 1, tzinfo=dt.UTC)
    took = _generate(args.records, ids, start, int((end - start).total_seconds()))
    month = previous_month(today)
    per_month = args.records // args.accounts // MONTHS
    say(f"generated {args.records:,} records for {args.accounts:,} accounts in {took:.0f} s "
          f"(about {per_month} per account and month)")  # fmt: skip
    say(f"covering index:   {_summary(_time_report(ids, month, args.runs))} ({_load()})")
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX usage_account_start_cov_idx")
        cursor.execute(
            "CREATE INDEX usage_account_start_plain ON usage_usagerecord (account_id, start_time)"
        )
        cursor.execute("ANALYZE usage_usagerecord")
    try:
        say(f"plain index:      {_summary(_time_report(ids, month, args.runs))} ({_load()})")
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP INDEX usage_account_start_plain")
            cursor.execute(
                "CREATE INDEX usage_account_start_cov_idx ON usage_usagerecord "
                "(account_id, start_time) INCLUDE (service, region, cost, duration)"
            )


def billing(args) -> None:
    call_command("migrate", verbosity=0)
    ids = _reset(args.accounts)
    month = previous_month(timezone.now().date())
    start, end = month_bounds(month)
    took = _generate(args.records, ids, start, int((end - start).total_seconds()) - 1)
    say(f"generated {args.records:,} unbilled records for {args.accounts:,} accounts "
          f"in {month:%Y-%m} in {took:.0f} s")  # fmt: skip
    began, cpu = time.perf_counter(), _cpu()
    result = services.usage_bill_month(
        month=month, batch_size=args.batch_size, workers=args.workers
    )
    first, cpu = time.perf_counter() - began, _cpu() - cpu
    # With several workers the batches run on short-lived connections whose
    # backends this process cannot account for; CPU is shown for one worker only.
    cpu_note = f", {cpu:.1f} s CPU (app + database backend)" if args.workers == 1 else ""
    say(f"billing run ({args.workers} workers): {first:.1f} s wall{cpu_note}, "
        f"{_load()} — {result.invoices_created:,} invoices, "
        f"{result.lines_created:,} lines, {result.records_billed:,} records")  # fmt: skip
    began = time.perf_counter()
    again = services.usage_bill_month(month=month, batch_size=args.batch_size)
    say(f"second run:  {time.perf_counter() - began:.1f} s — "
          f"{again.records_billed} records, {again.invoices_updated} invoices updated")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("report")
    rep.add_argument("--records", type=int, default=3_000_000)
    rep.add_argument("--accounts", type=int, default=1000)
    rep.add_argument("--runs", type=int, default=100)
    bil = sub.add_parser("billing")
    bil.add_argument("--records", type=int, default=1_000_000)
    bil.add_argument("--accounts", type=int, default=10_000)
    bil.add_argument("--batch-size", type=int, default=services.BILLING_BATCH_ACCOUNTS)
    bil.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        raise SystemExit("Set DATABASE_URL to a PostgreSQL database.")
    {"report": report, "billing": billing}[args.command](args)


if __name__ == "__main__":
    main()
