"""Usage at scale on PostgreSQL: the report of one account's month, and the billing run.

Data is generated inside PostgreSQL with generate_series (accounts through one
bulk insert). Each sub-command wipes the usage and billing data of the
database named by DATABASE_URL first, so point it at a scratch database.

    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/usage_scratch DEBUG=1
    python bench/usage_scale.py report --records 3000000 --accounts 1000
    python bench/usage_scale.py billing --records 1000000 --accounts 10000
    python bench/usage_scale.py scale --records 100000000   # what `make bench-scale` runs

`report` times one account's month (total, grouped by service, the first page
of raw rows and its count) with the covering index, then with a plain
(account_id, start_time) index for comparison. `billing` times one billing run
over a month of unbilled usage, then a second run (nothing left to bill).

`scale` rebuilds the database's schema (it empties the whole database), makes
10,000 accounts and measures, with production settings: ingestion over HTTP
into the empty table; then loads `--records` usage records (1,000,000 a month
over as many months as that takes, ending last month, bench/generate.py's
layout) and measures ingestion over HTTP again, a one-account-month report
(in-process through the whole Django stack) and the billing run of last
month; then detaches every month but the last `--compare-months` (10 by
default: 10,000,000 records left, the `make bench` size) and measures the same
report and the same month's billing run again. It prints the load's time and
the database's size, and writes bench-results/scale/results.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing.settings")
if sys.argv[1:2] == ["scale"]:
    # Production settings, as `make bench` measures (no DEBUG query log).
    from bench.server import production_env

    os.environ.update(
        production_env(os.environ.get("DATABASE_URL", ""), work_dir=ROOT / "bench-results")
    )
    os.environ["ALLOWED_HOSTS"] = "127.0.0.1,testserver"
    os.environ["MAX_REQUEST_BYTES"] = str(64 * 1024 * 1024)
os.environ.setdefault("DEBUG", "1")

import django  # noqa: E402

if os.environ.get("DATABASE_URL", "").startswith("postgres"):
    from bench.run import ensure_database  # noqa: E402

    ensure_database(os.environ["DATABASE_URL"])
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


# --- scale: make bench-scale ---------------------------------------------------------

PER_MONTH = 1_000_000
INGEST_BATCH = 5_000


def _rebuild_schema(accounts: int) -> list[int]:
    """An empty database at the current migrations, with `accounts` accounts (ids 1..N)."""
    with connection.cursor() as cursor:
        cursor.execute("DROP SCHEMA public CASCADE")
        cursor.execute("CREATE SCHEMA public")
    call_command("migrate", verbosity=0)
    Account.objects.bulk_create(
        (Account(org_name=f"Scale {n:05d}", currency="USD") for n in range(accounts)),
        batch_size=2000,
    )
    return list(Account.objects.order_by("pk").values_list("pk", flat=True))


def _size(sql: str = "SELECT pg_database_size(current_database())") -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return int(cursor.fetchone()[0])


def _gb(size: int) -> str:
    return f"{size / 1e9:.1f} GB"


def _ingest(env: dict, secret: str, ids: list[int], records: int, workers: int, port: int) -> dict:
    """POST /v1/usage over HTTP (gunicorn), `records` in 5,000-record batches from 4
    clients; every record must be stored; they are deleted afterwards."""
    from bench.server import Gunicorn
    from bench.usage_ingest import _server_cpu, post_bodies, spread_bodies

    tag = f"ingest-{time.time_ns()}"
    now = timezone.now()
    bodies = spread_bodies(records, INGEST_BATCH, ids, tag=tag, now=now)
    log = ROOT / "bench-results" / "scale" / "gunicorn.log"
    load_before = os.getloadavg()
    with Gunicorn(env, port=port, workers=workers, log_path=log) as server:
        # One batch to warm the workers up (connections, imports), not timed.
        post_bodies(port, secret, bodies[:workers], clients=workers)
        assert server.process is not None
        cpu_before = _server_cpu(server.process.pid)
        stored, seconds = post_bodies(port, secret, bodies[workers:], clients=4)
        cpu_after = _server_cpu(server.process.pid)
    cpu = sum(after - cpu_before.get(pid, 0.0) for pid, after in cpu_after.items())
    sent = INGEST_BATCH * (len(bodies) - workers)
    if stored != sent:
        raise SystemExit(f"ingestion stored {stored:,} of {sent:,} records")
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM usage_usagerecord WHERE start_time >= %s AND client_id LIKE %s",
            [now - dt.timedelta(hours=2), f"{tag}-%"],
        )
        cursor.execute("VACUUM (ANALYZE) usage_usagerecord, usage_usagerecord_key")
    return {
        "records": stored,
        "seconds": round(seconds, 2),
        "records_per_s": round(stored / seconds),
        # CPU of the gunicorn workers and of the database's backends: the work
        # itself, whatever else the machine runs.
        "server_cpu_seconds": round(cpu, 2),
        "records_per_cpu_second": round(stored / cpu) if cpu else None,
        "batch": INGEST_BATCH,
        "clients": 4,
        "gunicorn_workers": workers,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }


def _report_p50(secret: str, ids: list[int], month: dt.date, runs: int) -> dict:
    """GET /v1/usage/report for one account's month, in-process through the whole
    Django stack (middleware, key check, view, JSON), `runs` accounts in turn."""
    from django.db import reset_queries
    from django.test import Client

    client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    last = month_end(month)

    def path(account: int) -> str:
        return f"/v1/usage/report?start_date={month}&end_date={last}&account_id={account}"

    for account in ids[:5]:
        assert client.get(path(account)).status_code == 200
    statements = []

    def count(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        response = client.get(path(ids[0]))
    rows = len(json.loads(response.content)["usage"])
    timings = []
    cpu = _cpu()
    for n in range(runs):
        account = ids[(n * 37) % len(ids)]
        began = time.perf_counter()
        response = client.get(path(account))
        timings.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200
        reset_queries()
    cpu = _cpu() - cpu
    ordered = sorted(timings)
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(ordered[int(len(ordered) * 0.95) - 1], 2),
        "runs": runs,
        # This process and its database backend, per request: the work itself.
        "cpu_ms_per_request": round(cpu / runs * 1000, 2),
        "rows_on_page": rows,
        "queries": len(statements),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def _billing_run(month: dt.date, workers: int) -> dict:
    from bench.run import billing_run_counts, undo_billing_run, vacuum

    undo_billing_run(month)
    load_before = os.getloadavg()
    began, cpu = time.perf_counter(), _cpu()
    result = services.usage_bill_month(month=month, workers=workers)
    seconds, cpu = time.perf_counter() - began, _cpu() - cpu
    invoices, _, records = billing_run_counts(month)
    undo_billing_run(month)
    vacuum()
    return {
        "month": f"{month:%Y-%m}",
        "seconds": round(seconds, 1),
        "records": records,
        "records_per_s": round(records / seconds) if seconds else None,
        "invoices": invoices,
        "records_billed": result.records_billed,
        # App and database backend CPU; with one worker that is all the run's work.
        "cpu_seconds": round(cpu, 1) if workers == 1 else None,
        "workers": workers,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }


def _rows() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM usage_usagerecord")
        return int(cursor.fetchone()[0])


def scale(args) -> None:
    from django.db import transaction

    from accounts.services import api_key_create
    from bench.generate import load_usage, months_back, secondary_indexes_dropped
    from bench.run import machine
    from usage.partitions import partitions_detach

    env = {k: os.environ[k] for k in ("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL",
                                      "CONN_MAX_AGE", "SECURE_SSL_REDIRECT", "STATIC_MANIFEST",
                                      "MEDIA_ROOT", "STATIC_ROOT", "LOG_LEVEL",
                                      "DJANGO_SETTINGS_MODULE", "MAX_REQUEST_BYTES")}  # fmt: skip
    months = max(1, args.records // PER_MONTH)
    today = timezone.now().date()
    month = previous_month(today)
    out: dict = {"machine": machine(), "records": args.records, "months": months,
                 "accounts": args.accounts, "billed_month": f"{month:%Y-%m}"}  # fmt: skip
    say(f"bench-scale: {args.records:,} usage records over {months} months, "
        f"{args.accounts:,} accounts ({_load()})")  # fmt: skip
    started = time.perf_counter()
    ids = _rebuild_schema(args.accounts)
    _, secret = api_key_create(name="bench-scale", scope="write")
    out["empty_database_bytes"] = _size()

    out["ingest_empty"] = _ingest(env, secret, ids, args.ingest_records, args.workers, args.port)
    say(f"ingestion, empty table:        {out['ingest_empty']['records_per_s']:>9,} records/s, "
        f"{out['ingest_empty']['records_per_cpu_second']:,} per server CPU-second "
        f"(load average before {out['ingest_empty']['load_average_before'][0]:.1f})")  # fmt: skip

    began = time.perf_counter()
    with (
        transaction.atomic(),
        connection.cursor() as cursor,
        secondary_indexes_dropped(cursor, ["usage_usagerecord"]),
    ):
        load_usage(
            cursor,
            accounts=len(ids),
            records=args.records,
            first_month=months_back(today, months),
            months=months,
        )
    loaded = time.perf_counter() - began
    with connection.cursor() as cursor:
        vacuum_began = time.perf_counter()
        cursor.execute("VACUUM (ANALYZE) usage_usagerecord, usage_usagerecord_key")
        vacuumed = time.perf_counter() - vacuum_began
    out["load"] = {
        "seconds": round(loaded, 1),
        "vacuum_analyze_seconds": round(vacuumed, 1),
        "database_bytes": _size(),
        "usage_bytes": _size(
            "SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits "
            "WHERE inhparent = 'usage_usagerecord'::regclass"
        ),
        "keys_bytes": _size("SELECT pg_total_relation_size('usage_usagerecord_key')"),
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }
    say(f"loaded {args.records:,} records in {loaded:.0f} s, then VACUUM (ANALYZE) in "
        f"{vacuumed:.0f} s; database {_gb(out['load']['database_bytes'])} (records "
        f"{_gb(out['load']['usage_bytes'])}, keys {_gb(out['load']['keys_bytes'])})")  # fmt: skip

    out["ingest_full"] = _ingest(env, secret, ids, args.ingest_records, args.workers, args.port)
    say(f"ingestion, {args.records:,} rows: {out['ingest_full']['records_per_s']:>9,} records/s, "
        f"{out['ingest_full']['records_per_cpu_second']:,} per server CPU-second "
        f"(load average before {out['ingest_full']['load_average_before'][0]:.1f})")  # fmt: skip
    out["report_full"] = _report_p50(secret, ids, month, args.runs)
    say(f"report, one account-month:     p50 {out['report_full']['p50_ms']} ms, p95 "
        f"{out['report_full']['p95_ms']} ms, {out['report_full']['cpu_ms_per_request']} ms CPU "
        f"({out['report_full']['queries']} queries, "
        f"in-process; load average {out['report_full']['load_average'][0]:.1f})")  # fmt: skip
    out["billing_full"] = _billing_run(month, args.billing_workers)
    say(f"billing run {month:%Y-%m}:           {out['billing_full']['seconds']} s, "
        f"{out['billing_full']['records']:,} records, "
        f"{out['billing_full']['records_per_s']:,} records/s, CPU {out['billing_full']['cpu_seconds']} s "
        f"(load average before {out['billing_full']['load_average_before'][0]:.1f})")  # fmt: skip

    if args.compare_months < months:
        detached = partitions_detach(
            before=months_back(today, args.compare_months), drop=True, force=True
        )
        with connection.cursor() as cursor:
            cursor.execute("VACUUM (ANALYZE) usage_usagerecord")
        rows = _rows()
        out["compare"] = {"months_detached": len(detached.detached), "rows": rows}
        out["report_compare"] = _report_p50(secret, ids, month, args.runs)
        out["billing_compare"] = _billing_run(month, args.billing_workers)
        say(f"after detaching {len(detached.detached)} months ({rows:,} rows left): report p50 "
            f"{out['report_compare']['p50_ms']} ms ({out['report_compare']['cpu_ms_per_request']} ms "
            f"CPU); billing run "
            f"{out['billing_compare']['seconds']} s, "
            f"{out['billing_compare']['records_per_s']:,} records/s, CPU "
            f"{out['billing_compare']['cpu_seconds']} s "
            f"(load average before {out['billing_compare']['load_average_before'][0]:.1f})")  # fmt: skip
    out["total_seconds"] = round(time.perf_counter() - started, 1)
    out["database_bytes_at_end"] = _size()
    path = ROOT / "bench-results" / "scale" / "results.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    say(f"done in {out['total_seconds']:.0f} s; database now {_gb(out['database_bytes_at_end'])}; "
        f"figures in {path.relative_to(ROOT)}")  # fmt: skip


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
    sca = sub.add_parser("scale")
    sca.add_argument("--records", type=int, default=100_000_000)
    sca.add_argument("--accounts", type=int, default=10_000)
    sca.add_argument("--compare-months", type=int, default=10)
    sca.add_argument("--ingest-records", type=int, default=300_000)
    sca.add_argument("--runs", type=int, default=100, help="report requests timed")
    sca.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    sca.add_argument(
        "--billing-workers", type=int, default=1, help="1: its CPU time is measured too"
    )
    sca.add_argument("--port", type=int, default=8060)
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        raise SystemExit("Set DATABASE_URL to a PostgreSQL database.")
    {"report": report, "billing": billing, "scale": scale}[args.command](args)


if __name__ == "__main__":
    main()
