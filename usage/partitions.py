"""Monthly partitions of the usage records on PostgreSQL.

`usage_usagerecord` is partitioned by range of `start_time`, one partition per
UTC month (`usage_usagerecord_p2026_11`), plus a DEFAULT partition
(`usage_usagerecord_default`) that takes a record of a month that has no
partition yet, so no record is ever refused for its date. A report or a
billing run of one month reads that month's partition only (the planner
prunes the others), so its cost follows the month's records, not the table's.

The uniqueness of (account, client id) cannot be a unique index of a
partitioned table (such an index must contain the partition key, and the same
id may not come back in another month). It is kept by an unpartitioned table
of keys, `usage_usagerecord_key`, whose primary key carries the constraint's
name, `usage_client_id_unique_per_account`. Statement triggers on the
partitioned table keep it in step with every write made through that table
(INSERT, COPY, DELETE, TRUNCATE; a record's account and id cannot change);
ingestion reserves its keys first (`INSERT ... ON CONFLICT DO NOTHING`) and
tells the insert trigger so (`usage.keys_reserved`). Keys of a detached month
stay: those ids remain taken, as they were.

`partitions_ensure` (the Celery task `usage.ensure_partitions`, daily) creates
the current month's partition and the next ones ahead of time, and a partition
for every month that has records waiting in the DEFAULT partition, moving them
in. `manage.py usage_partitions --detach-before YYYY-MM` detaches old months
(every record billed, unless --force); the detached table stays in the
database, to archive (pg_dump) and drop.

SQLite keeps one plain table with its unique constraint: every function here
is a no-op there.
"""

from __future__ import annotations

import datetime as dt
import re
import zlib
from dataclasses import dataclass, field

from django.db import connection, transaction

from billing.lib.months import add_months, month_start

PARENT = "usage_usagerecord"
DEFAULT_PARTITION = f"{PARENT}_default"
KEYS_TABLE = f"{PARENT}_key"
KEYS_CONSTRAINT = "usage_client_id_unique_per_account"
# Set (transaction-locally) by ingestion, which has reserved the keys itself.
KEYS_RESERVED_SETTING = "usage.keys_reserved"
AHEAD_MONTHS = 2
_NAME_RE = re.compile(rf"\A{PARENT}_p(\d{{4}})_(\d{{2}})\Z")
_LOCK_KEY = zlib.crc32(b"usage partitions")


def partition_name(month: dt.date) -> str:
    return f"{PARENT}_p{month:%Y_%m}"


def _bounds(month: dt.date) -> tuple[str, str]:
    first = month_start(month)
    return f"{first:%Y-%m-%d} 00:00:00+00", f"{add_months(first, 1):%Y-%m-%d} 00:00:00+00"


def is_partitioned(cursor=None) -> bool:
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as own:
        cur = cursor or own
        cur.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table p "
            "JOIN pg_class c ON c.oid = p.partrelid WHERE c.relname = %s "
            "AND c.relnamespace = current_schema()::regnamespace)",
            [PARENT],
        )
        return bool(cur.fetchone()[0])


def month_partitions(cursor=None) -> dict[dt.date, str]:
    """The attached monthly partitions, {first day of the month: table name}."""
    if not is_partitioned(cursor):
        return {}
    with connection.cursor() as own:
        cur = cursor or own
        cur.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass",
            [PARENT],
        )
        found = {}
        for (name,) in cur.fetchall():
            match = _NAME_RE.match(name)
            if match:
                found[dt.date(int(match[1]), int(match[2]), 1)] = name
        return dict(sorted(found.items()))


def create_month(cursor, month: dt.date) -> bool:
    """Create `month`'s partition unless it exists; returns whether it was created.

    Records of that month waiting in the DEFAULT partition move into it. The
    table is built apart and then attached, which locks the parent only in
    SHARE UPDATE EXCLUSIVE mode (ingestion goes on meanwhile), and the DEFAULT
    partition briefly. Run inside a transaction.
    """
    name = partition_name(month)
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
    if cursor.fetchone()[0]:
        return False
    low, high = _bounds(month)
    cursor.execute(
        f'CREATE TABLE "{name}" (LIKE "{PARENT}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS)'
    )
    # A CHECK matching the range lets ATTACH skip scanning the new table.
    cursor.execute(
        f'ALTER TABLE "{name}" ADD CONSTRAINT "{name}_range" '
        f"CHECK (start_time >= '{low}' AND start_time < '{high}')"
    )
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [DEFAULT_PARTITION])
    if cursor.fetchone()[0]:
        # Straight from the partition, not through the parent: the records
        # stay the same records, so their keys stay (no trigger fires).
        cursor.execute(
            f'WITH moved AS (DELETE FROM "{DEFAULT_PARTITION}" '
            f"WHERE start_time >= '{low}' AND start_time < '{high}' RETURNING *) "
            f'INSERT INTO "{name}" SELECT * FROM moved'
        )
    cursor.execute(
        f'ALTER TABLE "{PARENT}" ATTACH PARTITION "{name}" '
        f"FOR VALUES FROM ('{low}') TO ('{high}')"
    )
    cursor.execute(f'ALTER TABLE "{name}" DROP CONSTRAINT "{name}_range"')
    return True


@dataclass
class EnsureResult:
    created: list[str] = field(default_factory=list)
    # Records moved out of the DEFAULT partition into new monthly partitions.
    moved_from_default: int = 0

    def as_dict(self) -> dict:
        return {"created": self.created, "moved_from_default": self.moved_from_default}


def partitions_ensure(*, today: dt.date | None = None, ahead: int = AHEAD_MONTHS) -> EnsureResult:
    """Create the partitions of the current month and `ahead` months after it, and
    of every month that has records in the DEFAULT partition (moving them in)."""
    result = EnsureResult()
    if not is_partitioned():
        return result
    today = today or dt.datetime.now(dt.UTC).date()
    with transaction.atomic(), connection.cursor() as cursor:
        # One run at a time (a second one waits, then finds the work done).
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        cursor.execute(
            f"SELECT DISTINCT date_trunc('month', start_time AT TIME ZONE 'UTC')::date "
            f'FROM "{DEFAULT_PARTITION}"'
        )
        stranded = {row[0] for row in cursor.fetchall()}
        cursor.execute(f'SELECT count(*) FROM "{DEFAULT_PARTITION}"')
        waiting = cursor.fetchone()[0]
        wanted = {add_months(month_start(today), n) for n in range(ahead + 1)} | stranded
        for month in sorted(wanted):
            if create_month(cursor, month):
                result.created.append(partition_name(month))
        cursor.execute(f'SELECT count(*) FROM "{DEFAULT_PARTITION}"')
        result.moved_from_default = waiting - cursor.fetchone()[0]
    return result


class PartitionRefused(Exception):
    """A month that may not be detached (yet)."""


@dataclass
class DetachResult:
    detached: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    records: int = 0


def partitions_detach(
    *, before: dt.date, drop: bool = False, force: bool = False, today: dt.date | None = None
) -> DetachResult:
    """Detach every monthly partition of a month before `before`.

    A month is refused if it is not over (`before` may be at most the current
    month) or, without `force`, if any of its records is unbilled. The detached
    tables stay in the database as plain tables (archive them, then drop them),
    unless `drop`. Their records' ids stay taken (their keys are kept).
    """
    result = DetachResult()
    if not is_partitioned():
        return result
    today = today or dt.datetime.now(dt.UTC).date()
    before = month_start(before)
    if before > month_start(today):
        raise PartitionRefused(
            f"{before:%Y-%m} is after the current month: only past months can be detached."
        )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        months = [m for m in month_partitions(cursor) if m < before]
        names = [partition_name(m) for m in months]
        if not force:
            for name in names:
                cursor.execute(f'SELECT count(*) FROM "{name}" WHERE line_item_id IS NULL')
                unbilled = cursor.fetchone()[0]
                if unbilled:
                    raise PartitionRefused(
                        f"{name} has {unbilled:,} unbilled records: bill the month first "
                        "(or pass --force to detach it anyway)."
                    )
        for name in names:
            cursor.execute(f'SELECT count(*) FROM "{name}"')
            result.records += cursor.fetchone()[0]
            cursor.execute(f'ALTER TABLE "{PARENT}" DETACH PARTITION "{name}"')
            result.detached.append(name)
            if drop:
                cursor.execute(f'DROP TABLE "{name}"')
                result.dropped.append(name)
    return result
