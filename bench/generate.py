"""Load benchmark data into the PostgreSQL database named by DATABASE_URL, set-based.

Full scale (--scale 1): 10,000 accounts; 1,000,000 invoices over 24 months in
every state, 3 lines each, a payment transaction for each paid one; 10,000,000
usage records over the 10 months before the current one (1,000,000 a month).
The last full month's usage is left unbilled, for the billing-run benchmark.

Everything is generated inside PostgreSQL with generate_series: no rows travel
through Python. Re-running with the same scale does nothing; another scale
wipes and reloads.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench python bench/generate.py --scale 0.01
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import sys
import time
from pathlib import Path
from string import Template

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing.settings")

FULL = {"accounts": 10_000, "invoices": 1_000_000, "usage": 10_000_000}
USAGE_MONTHS = 10
INVOICE_MONTHS = 24
BULK_TABLES = [
    "invoices_invoice",
    "invoices_lineitem",
    "invoices_paymenttransaction",
    "usage_usagerecord",
]


def say(text: str, *, stream=None) -> None:
    stream = stream or sys.stdout
    stream.write(text + "\n")
    stream.flush()


def months_back(today: dt.date, n: int) -> dt.date:
    index = today.year * 12 + today.month - 1 - n
    return dt.date(index // 12, index % 12 + 1, 1)


def sizes(scale: float) -> dict[str, int]:
    return {
        name: max(int(count * scale), 24 if name != "accounts" else 10)
        for name, count in FULL.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1 = full size; 0.01 = 1%")
    parser.add_argument("--force", action="store_true", help="reload even if this scale is loaded")
    args = parser.parse_args()
    if not 0 < args.scale <= 1:
        parser.error("--scale must be in (0, 1]")

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    if connection.vendor != "postgresql":
        say(
            "bench/generate.py needs PostgreSQL: set DATABASE_URL=postgres://...", stream=sys.stderr
        )
        return 2
    if schema_is_stale(connection):
        say("The database ran migrations this code no longer has: rebuilding its schema.")
        with connection.cursor() as cur:
            cur.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    call_command("migrate", verbosity=0)
    n = sizes(args.scale)
    with connection.cursor() as cur:
        cur.execute(
            "CREATE TABLE IF NOT EXISTS bench_meta (key text PRIMARY KEY, value text NOT NULL)"
        )
        cur.execute("SELECT value FROM bench_meta WHERE key = 'scale'")
        row = cur.fetchone()
        # The data's months end with last month: a load from an earlier month is stale
        # (its "last full month" has no usage to bill), so the stamp carries the month.
        stamp = f"{args.scale!r} loaded in {dt.datetime.now(dt.UTC):%Y-%m}"
        if row and row[0] == stamp and not args.force:
            say(f"Benchmark data at scale {args.scale} already loaded: {n}")
            render_representations(n)
            return 0
    started = time.monotonic()
    load(connection, n)
    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO bench_meta VALUES ('scale', %s) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [stamp],
        )
    say(f"Loaded {n} in {time.monotonic() - started:.1f} s")
    render_representations(n)
    return 0


def render_representations(n: dict[str, int]) -> None:
    """Store every invoice's API representations, as a live system has them (rendered
    when each invoice changed); a no-op when none is missing or of an older format."""
    from django.core.management import call_command

    if os.environ.get("BENCH_BACKFILL", "1" if n["invoices"] <= 100_000 else "0") != "1":
        # About 2.5 ms of CPU per invoice: some 20 minutes on 2 cores for the full
        # 1,000,000. The benchmark's first (untimed) request to each endpoint renders
        # and stores the rows it reads, as a read does, so the timed requests read
        # stored rows either way; BENCH_BACKFILL=1 stores every invoice's rows first.
        say(f"  {'stored representations':<34} on first read (BENCH_BACKFILL=1 stores all)")
        return
    started = time.monotonic()
    call_command("render_representations", processes=os.cpu_count() or 1)
    say(f"  {'stored representations':<34} {time.monotonic() - started:7.1f} s")


def schema_is_stale(connection) -> bool:
    """True when migrations recorded as applied are gone from the code (renamed or
    squashed since): `migrate` cannot reconcile that, and this data is disposable."""
    from django.db.migrations.loader import MigrationLoader

    loader = MigrationLoader(connection, ignore_no_migrations=True)
    return bool(set(loader.applied_migrations) - set(loader.disk_migrations))


def step(label: str, cur, sql: str, **values) -> None:
    """Run one statement; $names are our own integers and dates, substituted as literals."""
    t0 = time.monotonic()
    cur.execute(
        Template(sql).substitute(
            {k: f"'{v}'" if isinstance(v, dt.date) else int(v) for k, v in values.items()}
        )
    )
    say(f"  {label:<34} {time.monotonic() - t0:7.1f} s")


@contextlib.contextmanager
def secondary_indexes_dropped(cur, tables: list[str]):
    """Load into tables without their secondary indexes and foreign keys; rebuild them once.

    Maintaining an index row by row (10,000,000 usage rows land in random
    places of the per-account indexes) and checking a foreign key row by row
    cost several times more than building the index once and validating the
    key with one join. Primary keys stay. The caller's transaction makes this
    all or nothing: a load that dies half-way rolls back to the old tables
    with every index and constraint in place.
    """
    cur.execute(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), contype "
        "FROM pg_constraint WHERE conrelid = ANY(%s::regclass[]) AND contype IN ('u', 'f') "
        "ORDER BY contype DESC, conname",
        [tables],
    )
    constraints = cur.fetchall()  # unique ones first, so they are rebuilt before the keys
    cur.execute(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "WHERE i.indrelid = ANY(%s::regclass[]) AND NOT i.indisprimary AND NOT EXISTS "
        "(SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid)",
        [tables],
    )
    indexes = cur.fetchall()
    for table, name, _, _ in reversed(constraints):
        cur.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, _ in indexes:
        cur.execute(f"DROP INDEX {name}")
    yield
    t0 = time.monotonic()
    # Keys of tables loaded alongside (none today) may still hold deferred
    # checks, and ALTER TABLE refuses to run while any are pending.
    cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
    cur.execute("SET LOCAL maintenance_work_mem = '512MB'")
    for _, definition in indexes:
        # A partitioned table's index reads "ON ONLY" (the parent alone): build it everywhere.
        cur.execute(definition.replace(" ON ONLY ", " ON "))
    for table, name, definition, _ in constraints:
        cur.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
    label = f"{len(indexes)} indexes, {len(constraints)} constraints rebuilt"
    say(f"  {label:<34} {time.monotonic() - t0:7.1f} s")


def load_usage(cur, *, accounts: int, records: int, first_month: dt.date, months: int) -> None:
    """`records` usage records for accounts 1..`accounts` over `months` months from
    `first_month`, into the partitioned table (PostgreSQL; see usage.partitions).

    Record j: account 1 + j % accounts, month (j / accounts) % months, spread over
    the month. Each month gets its partition first (the rest of the current month
    and the two after it too, as the daily task would). The table of keys is
    filled once at the end, its primary key rebuilt after the load instead of
    maintained row by row (the insert trigger is off meanwhile); a duplicate id
    would fail that rebuild, so the load stays all or nothing. Run it in the
    caller's transaction, with the secondary indexes dropped for speed.
    """
    from usage.partitions import KEYS_CONSTRAINT, KEYS_TABLE, create_month

    today = dt.datetime.now(dt.UTC).date()
    last = today.year * 12 + today.month + 1
    month = first_month
    while month.year * 12 + month.month - 1 <= last:
        create_month(cur, month)
        month = months_back(month, -1)
    cur.execute(f"ALTER TABLE {KEYS_TABLE} DROP CONSTRAINT {KEYS_CONSTRAINT}")
    cur.execute("ALTER TABLE usage_usagerecord DISABLE TRIGGER usage_keys_insert")
    step(
        f"{records:,} usage records",
        cur,
        """
        INSERT INTO usage_usagerecord (account_id, client_id, resource_id, resource_name, service, region,
            start_time, end_time, duration, cost, line_item_id, created_at, updated_at)
        SELECT acc, 'u-' || j, 'i-' || lpad(to_hex(j % 5000), 8, '0'), 'server-' || (j % 50),
            (ARRAY['EC2','RDS','S3','Lambda','EKS'])[1 + (j % 5)],
            (ARRAY['us-west-1','us-east-1','eu-west-1'])[1 + (j % 3)],
            start_at, start_at + dur * interval '1 second', dur,
            round(dur / 3600.0 * (ARRAY[0.0416, 0.068, 0.005, 0.0009, 0.1])[1 + (j % 5)], 6),
            NULL, now(), now()
        FROM (
            SELECT j, 1 + (j % $accounts) AS acc,
                ($first_month::date + (((j / $accounts) % $months) * interval '1 month'))::timestamptz
                    + ((j::bigint * 7919) % (27 * 86400)) * interval '1 second' AS start_at,
                (ARRAY[600, 1800, 3600, 7200])[1 + (j % 4)] AS dur
            FROM generate_series(1::bigint, $usage) AS j
        ) AS g
        """,
        accounts=accounts,
        first_month=first_month,
        months=months,
        usage=records,
    )
    cur.execute("ALTER TABLE usage_usagerecord ENABLE TRIGGER usage_keys_insert")
    step(
        "usage keys (account, client id)",
        cur,
        f"INSERT INTO {KEYS_TABLE} (account_id, client_id) "
        "SELECT account_id, client_id FROM usage_usagerecord",
    )
    cur.execute("SET LOCAL maintenance_work_mem = '512MB'")
    step(
        "usage keys' primary key",
        cur,
        f"ALTER TABLE {KEYS_TABLE} ADD CONSTRAINT {KEYS_CONSTRAINT} "
        "PRIMARY KEY (account_id, client_id)",
    )


def load(connection, n: dict[str, int]) -> None:
    from django.db import transaction

    today = dt.datetime.now(dt.UTC).date()
    first_invoice_month = months_back(today, INVOICE_MONTHS - 1)
    first_usage_month = months_back(today, USAGE_MONTHS)
    accounts, invoices, usage = n["accounts"], n["invoices"], n["usage"]
    with (
        transaction.atomic(),
        connection.cursor() as cur,
        secondary_indexes_dropped(cur, BULK_TABLES),
    ):
        step(
            "wipe",
            cur,
            "TRUNCATE usage_usagerecord, invoices_paymenttransaction, invoices_invoiceevent, "
            "invoices_lineitem, invoices_invoice, invoices_invoicecounter, accounts_idempotencykey, "
            "accounts_apikey, accounts_account RESTART IDENTITY CASCADE",
        )
        step(
            f"{accounts:,} accounts",
            cur,
            """
            INSERT INTO accounts_account (id, org_name, billing_email, address_line1, address_line2, city,
                address_state, zip, country, phone, vat_code, vat_rate, currency, payment_terms_days,
                payment_method, card_token, card_brand, card_last4, card_exp_month, card_exp_year, state,
                deleted_at, created_at, updated_at, country_code, is_business, tax_exempt,
                tax_exempt_reason)
            SELECT a, 'Customer ' || a, 'billing' || a || '@example.test', a || ' Main Street', '',
                'City ' || (a % 100), '', lpad((a % 99999)::text, 5, '0'), 'US', '',
                CASE WHEN a % 3 = 0 THEN 'EU' || a ELSE '' END,
                CASE WHEN a % 3 = 0 THEN 21.00 END,
                CASE WHEN a % 3 = 0 THEN 'EUR' ELSE 'USD' END, 30, 'credit_card',
                CASE WHEN a % 17 = 0 THEN 'tok_chargeDeclined' ELSE 'tok_visa' END,
                'Visa', '4242', 12, 2030, 'active', NULL, now() - interval '3 years', now(),
                'US', true, false, ''
            FROM generate_series(1, $accounts) AS a
            """,
            accounts=accounts,
        )
        # Invoice i: month i % 24, account i % accounts, state by (i / 24) % 20.
        step(
            f"{invoices:,} invoices",
            cur,
            """
            INSERT INTO invoices_invoice (id, account_id, period, state, friendly_id, creation_type, currency,
                vat_rate, vat_code, cost_without_vat, vat_amount, cost, issued_on, due_on, paid_at,
                finalized_at, cancelled_at, buyer_details, seller_details, charge_attempts,
                last_charge_attempt_at, pdf, created_at, updated_at, buyer_country_code,
                seller_country_code, tax_category, tax_exemption_reason, tax_mention, tax_treatment,
                amount_credited, amount_paid, credit_applied)
            SELECT i, acc, period, st,
                CASE WHEN st = 'open' THEN NULL
                     ELSE to_char(period, 'YYYY-MM') || '-' || lpad(((i - 1) / 24 + 1)::text, 8, '0') END,
                'manual', CASE WHEN acc % 3 = 0 THEN 'EUR' ELSE 'USD' END,
                CASE WHEN acc % 3 = 0 THEN 21.00 END, '', net,
                CASE WHEN acc % 3 = 0 THEN round(net * 0.21, 2) ELSE 0 END,
                net + CASE WHEN acc % 3 = 0 THEN round(net * 0.21, 2) ELSE 0 END,
                CASE WHEN issued THEN (period + interval '1 month 2 days')::date END,
                CASE WHEN issued THEN (period + interval '1 month 32 days')::date END,
                CASE WHEN st = 'paid' THEN period + interval '1 month 32 days 3 hours' END,
                CASE WHEN st <> 'open' THEN period + interval '1 month 1 day' END,
                CASE WHEN st = 'cancelled' THEN period + interval '1 month 3 days' END,
                CASE WHEN issued THEN jsonb_build_object('id', acc, 'org_name', 'Customer ' || acc) ELSE '{}'::jsonb END,
                CASE WHEN issued THEN '{"id": 1, "name": "Bench Seller"}'::jsonb ELSE '{}'::jsonb END,
                CASE WHEN st = 'failed' THEN 3 WHEN st = 'unpaid' THEN 1 ELSE 0 END,
                NULL, '', period + interval '1 day' + (i % 86400) * interval '1 second', now(),
                '', '', '', '', '', '', 0,
                CASE WHEN st = 'paid'
                     THEN net + CASE WHEN acc % 3 = 0 THEN round(net * 0.21, 2) ELSE 0 END
                     ELSE 0 END,
                0
            FROM (
                SELECT i, 1 + (i % $accounts) AS acc,
                    ($first_month::date + ((i % 24) * interval '1 month'))::date AS period,
                    s.st, s.st IN ('pending', 'unpaid', 'paid', 'failed') AS issued,
                    (49.00 + round(((i % 1000) + 1) * 0.37, 2) + ((i % 97) + 1) * 1.5)::numeric AS net
                FROM generate_series(1, $invoices) AS i
                CROSS JOIN LATERAL (SELECT CASE ((i / 24) % 20)
                    WHEN 0 THEN 'open' WHEN 1 THEN 'finalized' WHEN 2 THEN 'pending'
                    WHEN 3 THEN 'unpaid' WHEN 4 THEN 'failed' WHEN 5 THEN 'cancelled'
                    ELSE 'paid' END AS st) AS s
            ) AS g
            """,
            accounts=accounts,
            first_month=first_invoice_month,
            invoices=invoices,
        )
        step(
            f"{invoices * 3:,} line items",
            cur,
            """
            INSERT INTO invoices_lineitem (invoice_id, name, description, quantity, unit_price, cost, type,
                metric_id, plan_id, contract_id, contract_type, source, created_at, updated_at)
            SELECT i.id, l.name, '', 1, l.price, l.price, l.type, NULL, NULL, NULL, '', '', i.created_at, i.created_at
            FROM invoices_invoice i
            CROSS JOIN LATERAL (VALUES
                ('Pro plan', 49.00::numeric, 'plan_fee'),
                ('API calls', round(((i.id % 1000) + 1) * 0.37, 2), 'usage'),
                ('Support', ((i.id % 97) + 1) * 1.5, 'manual')) AS l(name, price, type)
            """,
        )
        step(
            "payment transactions",
            cur,
            """
            INSERT INTO invoices_paymenttransaction (invoice_id, account_id, amount, currency, action, success,
                reference, message, method, card_brand, card_last4, card_exp_month, card_exp_year, test,
                gateway_response, created_at, updated_at)
            SELECT id, account_id, cost, currency, 'purchase', true, 'ch_bench_' || id, 'Transaction approved',
                'credit_card', 'Visa', '4242', 12, 2030, true, '{}'::jsonb, paid_at, paid_at
            FROM invoices_invoice WHERE state = 'paid' AND cost > 0
            """,
        )
        step(
            "invoice counters",
            cur,
            """
            INSERT INTO invoices_invoicecounter (series, last_number, created_at, updated_at)
            SELECT left(friendly_id, 7), max(right(friendly_id, 8)::int), now(), now()
            FROM invoices_invoice WHERE friendly_id IS NOT NULL GROUP BY 1
            """,
        )
        load_usage(
            cur,
            accounts=accounts,
            records=usage,
            first_month=first_usage_month,
            months=USAGE_MONTHS,
        )
        for table in (
            "accounts_account",
            "invoices_invoice",
            "invoices_lineitem",
            "invoices_paymenttransaction",
            "usage_usagerecord",
        ):
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT coalesce(max(id), 1) FROM {table}))"
            )
    # VACUUM as well: a table fresh from a bulk load has no visibility map, so
    # index-only scans would still read the table; autovacuum has long done
    # this to the tables of a running system.
    with connection.cursor() as cur:
        step("vacuum, analyze", cur, "VACUUM (ANALYZE)")


if __name__ == "__main__":
    sys.exit(main())
