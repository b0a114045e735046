"""Writes of usage: ingestion and the monthly billing run.

Ingestion is all or nothing per batch, and idempotent through the client's
record id: the unique constraint on (account, client_id) decides which
records are new, so concurrent or repeated deliveries never store a record
twice. On PostgreSQL the batch is COPYed into a temporary staging table, its
keys are reserved in the table of keys (`INSERT ... ON CONFLICT DO NOTHING`, see
usage.partitions) and the records whose keys were new are moved over with one
INSERT ... SELECT into the partitioned table, which routes each to its month.

The billing run turns a month's unbilled usage into background invoices, one
line per service and region: it totals the usage, hands the lines to
`invoices.services.invoices_upsert_background_lines` (invoices own every write
to their tables) and links the records to the lines it gets back. It works in
per-batch-of-accounts transactions, so a run killed half-way leaves whole
batches done or untouched, and a new run finishes the job: every step is
derived from what is still unbilled.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection, connections, transaction
from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from accounts.models import Account
from billing.lib.money import UNIT_PRICE_DECIMAL_PLACES, ZERO
from billing.lib.months import FIRST_BILLABLE_MONTH, month_end, month_start
from invoices.delivery import outbox
from invoices.models import Invoice, LineItem
from invoices.services import (
    BackgroundLinesResult,
    LineSpec,
    invoices_upsert_background_lines,
)
from usage import selectors
from usage.exceptions import (
    InvalidBillingMonth,
    UsageBatchEmpty,
    UsageBatchTooLarge,
    UsageRecordsInvalid,
)
from usage.models import Metric, Subscription, UsageRecord
from usage.partitions import KEYS_RESERVED_SETTING, KEYS_TABLE
from usage.validation import COLUMNS, MAX_BATCH_RECORDS, CleanRecord, clean_record

BILLING_ACTOR = "system:billing_run"
USAGE_SOURCE_PREFIX = "usage:"
# Sources of the lines rating writes (plan fees, setup fees, charges): each run
# recomputes them from the whole month and removes those no longer produced.
RATED_SOURCE_PREFIXES = ("plan:", "setup:", "charge:")
BILLING_BATCH_ACCOUNTS = 500
_UNIT_PRICE_PLACES = Decimal(1).scaleb(-UNIT_PRICE_DECIMAL_PLACES)


def usage_source(service: str, region: str) -> str:
    """The `source` of the invoice line that bills one service in one region."""
    return f"{USAGE_SOURCE_PREFIX}{service}:{region}"


# --- ingestion -------------------------------------------------------------------


@dataclass(frozen=True)
class IngestResult:
    received: int
    stored: int
    duplicates: int

    def as_dict(self) -> dict[str, int]:
        return {"received": self.received, "stored": self.stored, "duplicates": self.duplicates}


def usage_validate(
    records: Sequence[object], *, account_id: int | None = None
) -> list[CleanRecord]:
    """Check a batch; raise UsageRecordsInvalid listing every bad record and field.

    Beyond each record's own fields this checks, with one query each, that the
    accounts exist and that no record falls in a month whose background
    invoice has already been issued (that month is closed to new usage).
    """
    if not records:
        raise UsageBatchEmpty("Send at least one usage record.")
    if len(records) > MAX_BATCH_RECORDS:
        raise UsageBatchTooLarge(
            f"A request may carry at most {MAX_BATCH_RECORDS} records; this one has "
            f"{len(records)}. Split it into smaller batches."
        )
    errors: list[dict] = []
    clean: list[tuple[int, CleanRecord]] = []
    for index, raw in enumerate(records):
        record = clean_record(raw, index, errors, implied_account_id=account_id)
        if record is not None:
            clean.append((index, record))

    account_ids = {record.account_id for _, record in clean}
    if account_ids:
        known = set(
            Account.objects.billable().filter(pk__in=account_ids).values_list("pk", flat=True)
        )
        for index, record in clean:
            if record.account_id not in known:
                errors.append(
                    {
                        "index": index,
                        "field": "account_id",
                        "message": f"account {record.account_id} does not exist",
                    }
                )
        metric_codes = {r.metric for _, r in clean if r.metric is not None}
        if metric_codes:
            known_metrics = set(
                Metric.objects.filter(code__in=metric_codes).values_list("code", flat=True)
            )
            for index, record in clean:
                if record.metric is not None and record.metric not in known_metrics:
                    errors.append(
                        {
                            "index": index,
                            "field": "metric",
                            "message": f"no metric {record.metric!r} (see GET /v1/metrics)",
                        }
                    )
        months = {(r.account_id, r.start_time.date().replace(day=1)) for _, r in clean}
        closed = _closed_months(months)
        for index, record in clean:
            number = closed.get((record.account_id, record.start_time.date().replace(day=1)))
            if number is not None:
                errors.append(
                    {
                        "index": index,
                        "field": "start_time",
                        "message": (
                            f"record {record.client_id!r} falls in "
                            f"{record.start_time:%Y-%m}, which is already invoiced "
                            f"(invoice {number}); that month accepts no more usage"
                        ),
                    }
                )
    if errors:
        errors.sort(key=lambda error: error["index"])
        raise UsageRecordsInvalid(errors)
    return [record for _, record in clean]


def _closed_months(months: set[tuple[int, dt.date]]) -> dict[tuple[int, dt.date], str]:
    """(account, month) pairs whose background invoice has left open/finalized."""
    if not months:
        return {}
    rows = Invoice.objects.filter(
        creation_type=Invoice.CreationType.BACKGROUND,
        state__in=Invoice.ISSUED_STATES,
        account_id__in={account for account, _ in months},
        period__in={period for _, period in months},
    ).values_list("account_id", "period", "friendly_id")
    return {
        (account, period): number or "?"
        for account, period, number in rows
        if (account, period) in months
    }


def usage_ingest(
    *, records: Sequence[object], account_id: int | None = None, dry_run: bool = False
) -> IngestResult:
    """Validate and store a batch of usage records: all of them or none.

    `account_id` is the account the caller is limited to (an account-limited
    API key): it is implied for records that omit it and enforced for those
    that name one. A record whose id the account already sent, earlier or in
    the same batch, is counted as a duplicate and not stored again.
    """
    clean = usage_validate(records, account_id=account_id)
    unique: dict[tuple[int, str], CleanRecord] = {}
    for record in clean:
        unique.setdefault((record.account_id, record.client_id), record)
    rows = list(unique.values())
    if dry_run:
        stored = len(rows) - _count_existing(rows)
    else:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                stored = _insert_postgresql(rows)
            else:
                stored = _insert_generic(rows)
    return IngestResult(received=len(clean), stored=stored, duplicates=len(clean) - stored)


def _count_existing(rows: list[CleanRecord]) -> int:
    by_account: dict[int, list[str]] = defaultdict(list)
    for record in rows:
        by_account[record.account_id].append(record.client_id)
    existing = 0
    if connection.vendor == "postgresql":
        # The table of keys answers by its primary key; the records table has no
        # index on the client id (it is partitioned by month).
        with connection.cursor() as cursor:
            for account, ids in by_account.items():
                cursor.execute(
                    f"SELECT count(*) FROM {KEYS_TABLE} "
                    "WHERE account_id = %s AND client_id = ANY(%s)",
                    [account, ids],
                )
                existing += cursor.fetchone()[0]
        return existing
    for account, ids in by_account.items():
        for start in range(0, len(ids), 500):
            existing += UsageRecord.objects.filter(
                account_id=account, client_id__in=ids[start : start + 500]
            ).count()
    return existing


_STAGING_DDL = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS usage_staging ("
    "account_id bigint, client_id text, resource_id text, resource_name text, "
    "service text, region text, start_time timestamptz, end_time timestamptz, "
    "duration bigint, cost numeric, metric text, quantity numeric) ON COMMIT DELETE ROWS"
)
_COLUMNS_SQL = ", ".join(COLUMNS)
# One round trip, three statements: the keys are reserved in key order (two
# batches sharing keys wait for each other instead of deadlocking), a key
# already taken, or taken by a concurrent batch that commits, is skipped
# (ON CONFLICT waits for that batch to end), and the records of the keys just
# reserved are inserted with the key trigger told that their keys are written.
# The setting is reset at once: other writes of the same transaction are
# checked again.
_MOVE_SQL = (
    f"SELECT set_config('{KEYS_RESERVED_SETTING}', 'on', true); "
    f"WITH fresh AS (INSERT INTO {KEYS_TABLE} (account_id, client_id) "
    "SELECT account_id, client_id FROM usage_staging ORDER BY account_id, client_id "
    "ON CONFLICT DO NOTHING RETURNING account_id, client_id) "
    f"INSERT INTO {UsageRecord._meta.db_table} ({_COLUMNS_SQL}) "
    f"SELECT {', '.join('s.' + c for c in COLUMNS)} FROM usage_staging s "
    "JOIN fresh f ON f.account_id = s.account_id AND f.client_id = s.client_id; "
    f"SELECT set_config('{KEYS_RESERVED_SETTING}', 'off', true)"
)


def _insert_postgresql(rows: list[CleanRecord]) -> int:
    """COPY into a per-connection staging table, then reserve the keys and insert.

    Returns how many rows were inserted; the rest were already stored.
    """
    with connection.cursor() as cursor:
        cursor.execute(_STAGING_DDL)
        # Emptied at every commit; this also clears rows of an enclosing
        # transaction that has not committed yet (several batches in one).
        cursor.execute("DELETE FROM usage_staging")
        with cursor.cursor.copy(f"COPY usage_staging ({_COLUMNS_SQL}) FROM STDIN") as copy:
            copy.write(_copy_text(rows))
        cursor.execute(_MOVE_SQL)
        # Three results in order (set_config, the INSERT, set_config): the INSERT's count.
        cursor.cursor.nextset()
        return cursor.cursor.rowcount


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(rows: list[CleanRecord]) -> str:
    """The rows in COPY's text format, built in one pass (several times faster
    than adapting each value through the driver)."""
    escape = _COPY_ESCAPES

    def text(value: str) -> str:
        if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
            return value.translate(escape)
        return value

    return "".join(
        f"{r.account_id}\t{text(r.client_id)}\t{text(r.resource_id)}\t{text(r.resource_name)}\t"
        f"{text(r.service)}\t{text(r.region)}\t{r.start_time.isoformat()}\t"
        f"{r.end_time.isoformat()}\t{r.duration}\t{_null(r.cost)}\t"
        f"{_null(r.metric and text(r.metric))}\t{_null(r.quantity)}\n"
        for r in rows
    )


def _null(value: object) -> str:
    return "\\N" if value is None else str(value)


def _insert_generic(rows: list[CleanRecord]) -> int:
    """SQLite: INSERT OR IGNORE in the caller's transaction, counted by total_changes()."""
    objects = [
        UsageRecord(
            account_id=r.account_id,
            client_id=r.client_id,
            resource_id=r.resource_id,
            resource_name=r.resource_name,
            service=r.service,
            region=r.region,
            start_time=r.start_time,
            end_time=r.end_time,
            duration=r.duration,
            cost=r.cost,
            metric=r.metric,
            quantity=r.quantity,
        )
        for r in rows
    ]
    with connection.cursor() as cursor:
        cursor.execute("SELECT total_changes()")
        before = cursor.fetchone()[0]
        UsageRecord.objects.bulk_create(objects, ignore_conflicts=True, batch_size=500)
        cursor.execute("SELECT total_changes()")
        return cursor.fetchone()[0] - before


# --- the billing run ---------------------------------------------------------------


@dataclass
class BillingRunResult:
    month: dt.date
    dry_run: bool = False
    accounts: int = 0
    invoices_created: int = 0
    invoices_updated: int = 0
    lines_created: int = 0
    lines_updated: int = 0
    lines_removed: int = 0
    records_billed: int = 0
    # Net amount (without VAT) added to invoices by this run, per currency.
    amount: dict[str, Decimal] = field(default_factory=dict)
    # Accounts whose invoice for the month is already issued: their late usage
    # (pre-rated or metered) stays unbilled, {account_id: unbilled records}.
    skipped_issued: dict[int, int] = field(default_factory=dict)
    # Accounts with unbilled usage that are not billable (deleted).
    skipped_unbillable: dict[int, int] = field(default_factory=dict)
    # Accounts whose usage would break an invoice limit: {account_id: why}.
    rejected: dict[int, str] = field(default_factory=dict)
    # Metered records of the month left unbilled after the run: {account_id: records}.
    unrated: dict[int, int] = field(default_factory=dict)

    def merge(self, other: BillingRunResult) -> None:
        """Add the counts of one batch, billed on another thread."""
        for name in ("accounts", "invoices_created", "invoices_updated", "lines_created",
                     "lines_updated", "lines_removed", "records_billed"):  # fmt: skip
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for currency, amount in other.amount.items():
            self.amount[currency] = self.amount.get(currency, ZERO) + amount
        self.skipped_issued.update(other.skipped_issued)
        self.skipped_unbillable.update(other.skipped_unbillable)
        self.rejected.update(other.rejected)

    def as_dict(self) -> dict:
        return {
            "month": f"{self.month:%Y-%m}",
            "dry_run": self.dry_run,
            "accounts": self.accounts,
            "invoices_created": self.invoices_created,
            "invoices_updated": self.invoices_updated,
            "lines_created": self.lines_created,
            "lines_updated": self.lines_updated,
            "lines_removed": self.lines_removed,
            "records_billed": self.records_billed,
            "amount": {currency: str(value) for currency, value in sorted(self.amount.items())},
            "skipped_issued": {str(k): v for k, v in sorted(self.skipped_issued.items())},
            "skipped_unbillable": {str(k): v for k, v in sorted(self.skipped_unbillable.items())},
            "rejected": {str(k): v for k, v in sorted(self.rejected.items())},
            "unrated": {str(k): v for k, v in sorted(self.unrated.items())},
        }


def validate_billing_month(month: dt.date, now: dt.datetime | None = None) -> dt.date:
    now = now or timezone.now()
    period = month_start(month)
    if period < FIRST_BILLABLE_MONTH or period > month_start(now.date()):
        raise InvalidBillingMonth(
            f"Cannot bill {period:%Y-%m}: the month must be between "
            f"{FIRST_BILLABLE_MONTH:%Y-%m} and the current month."
        )
    return period


def usage_bill_month(
    *,
    month: dt.date,
    account_id: int | None = None,
    dry_run: bool = False,
    now: dt.datetime | None = None,
    batch_size: int = BILLING_BATCH_ACCOUNTS,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
) -> BillingRunResult:
    """Bill one month's unbilled usage into background invoices.

    For every billable account (`Account.objects.billable()`) with unbilled
    usage in the month, its background invoice of the month (created if
    missing, extended while still open or finalized, never touched once
    issued; all decided by `invoices_upsert_background_lines`) gets one usage
    line per service and region, whose amount is the sum of the records linked
    to it. A dry run does the same work inside a transaction that is rolled
    back, so its counts are exactly those of a real run. `workers` > 1 bills
    that many batches at once on separate database connections (PostgreSQL;
    batches never share an account, so they never wait for each other).
    """
    now = now or timezone.now()
    period = validate_billing_month(month, now)
    result = BillingRunResult(month=period, dry_run=dry_run)

    unbilled = UsageRecord.objects.unbilled(period).prerated()
    subscribed = Subscription.objects.overlapping(period, month_end(period))
    stale = _rated_lines(period)
    if account_id is not None:
        unbilled = unbilled.filter(account_id=account_id)
        subscribed = subscribed.filter(account_id=account_id)
        stale = stale.filter(invoice__account_id=account_id)
    candidates = sorted(
        set(unbilled.order_by().values_list("account_id", flat=True).distinct())
        | set(subscribed.order_by().values_list("account_id", flat=True).distinct())
        | set(stale.order_by().values_list("invoice__account_id", flat=True).distinct())
    )
    billable = set(
        Account.objects.billable().filter(pk__in=candidates).values_list("pk", flat=True)
    )
    unbillable = [pk for pk in candidates if pk not in billable]
    if unbillable:
        result.skipped_unbillable = _unbilled_counts(unbillable, period)
    accounts = [pk for pk in candidates if pk in billable]

    batches = [accounts[i : i + batch_size] for i in range(0, len(accounts), batch_size)]
    parallel = workers > 1 and not dry_run and connection.vendor == "postgresql"
    if parallel and len(batches) > 1:
        _bill_in_parallel(batches, period, now, result, workers, progress)
        result.unrated = _unrated_counts(period, account_id)
        _run_completed(result)
        return result
    outer = transaction.atomic() if dry_run else contextlib.nullcontext()
    with outer:
        for batch in batches:
            _bill_accounts(batch, period, now, result)
            if progress is not None:
                progress(len(batch))
        result.unrated = _unrated_counts(period, account_id)
        if dry_run:
            transaction.set_rollback(True)
    _run_completed(result)
    return result


def _run_completed(result: BillingRunResult) -> None:
    """`billing_run.completed` with the run's counts (not for a dry run), through the
    invoices app's outbox."""
    if result.dry_run:
        return
    data = {
        **{k: v for k, v in result.as_dict().items() if not isinstance(v, dict)},
        "amount": {currency: str(value) for currency, value in sorted(result.amount.items())},
        "accounts_skipped_issued": len(result.skipped_issued),
        "accounts_skipped_unbillable": len(result.skipped_unbillable),
        "accounts_rejected": len(result.rejected),
        "accounts_with_unrated_usage": len(result.unrated),
    }
    with transaction.atomic():
        outbox.event_record(event_type="billing_run.completed", data=data)


def _rated_lines(period: dt.date) -> QuerySet[LineItem]:
    """Plan lines (fees, setup fees, rated usage) on the month's open or finalized
    background invoices: an account that has some is rated again even when it
    no longer has a subscription in the month (its lines go)."""
    return LineItem.objects.filter(
        invoice__period=period,
        invoice__creation_type=Invoice.CreationType.BACKGROUND,
        invoice__state__in=Invoice.EDITABLE_STATES,
    ).filter(
        Q(source__startswith=RATED_SOURCE_PREFIXES[0])
        | Q(source__startswith=RATED_SOURCE_PREFIXES[1])
        | Q(source__startswith=RATED_SOURCE_PREFIXES[2])
    )


def _unrated_counts(period: dt.date, account_id: int | None) -> dict[int, int]:
    """Metered records of the month no line bills: on days without a subscription,
    of a metric the plan does not charge, or of an account not billed."""
    qs = UsageRecord.objects.unbilled(period).filter(metric__isnull=False)
    if account_id is not None:
        qs = qs.filter(account_id=account_id)
    return dict(
        qs.order_by()
        .values("account_id")
        .annotate(records=Count("id"))
        .values_list("account_id", "records")
    )


def _bill_in_parallel(
    batches: list[list[int]],
    period: dt.date,
    now: dt.datetime,
    result: BillingRunResult,
    workers: int,
    progress: Callable[[int], None] | None,
) -> None:
    lock = threading.Lock()

    def bill(batch: list[int]) -> None:
        part = BillingRunResult(month=period)
        try:
            _bill_accounts(batch, period, now, part)
        finally:
            connections.close_all()  # this thread's connection only
        with lock:
            result.merge(part)
            if progress is not None:
                progress(len(batch))

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="billing") as pool:
        futures = [pool.submit(bill, batch) for batch in batches]
        try:
            for future in as_completed(futures):
                future.result()
        except BaseException:
            # Batches already running finish (each is its own transaction);
            # the rest never start. A new run picks up whatever is left.
            for future in futures:
                future.cancel()
            raise


def _unbilled_counts(account_ids: Iterable[int], period: dt.date) -> dict[int, int]:
    rows = (
        UsageRecord.objects.unbilled(period)
        .filter(account_id__in=list(account_ids))
        .order_by()
        .values("account_id")
        .annotate(records=Count("id"))
        .values_list("account_id", "records")
    )
    return dict(rows)


# (account_id, service, region) -> (records, cost, seconds)
_Usage = dict[tuple[int, str, str], tuple[int, Decimal, int]]


def _usage_totals(qs) -> _Usage:
    return {
        (account, service, region): (records, cost or ZERO, seconds or 0)
        for account, service, region, records, cost, seconds in qs.order_by()
        .values("account_id", "service", "region")
        .annotate(records=Count("id"), cost=Sum("cost"), seconds=Sum("duration"))
        .values_list("account_id", "service", "region", "records", "cost", "seconds")
    }


def _usage_line(period: dt.date, service: str, region: str, totals) -> LineSpec:
    """The invoice line that bills one service in one region: quantity 1, the
    summed cost as its unit price (exact: record costs have six places)."""
    records, cost, seconds = totals
    hours = (Decimal(seconds) / 3600).quantize(Decimal("0.01"))
    return LineSpec(
        name=f"{service} usage, {region}"[:255],
        quantity=Decimal(1),
        unit_price=cost.quantize(_UNIT_PRICE_PLACES),
        type=LineItem.Type.USAGE,
        source=usage_source(service, region),
        description=(
            f"{service} in {region}, {period:%B %Y}: {records} usage records, {hours} hours"
        ),
    )


def _lines(period: dt.date, usage: _Usage) -> dict[int, list[LineSpec]]:
    lines: dict[int, list[LineSpec]] = defaultdict(list)
    for (account, service, region), totals in sorted(usage.items()):
        lines[account].append(_usage_line(period, service, region, totals))
    return lines


@transaction.atomic
def _bill_accounts(
    account_ids: list[int], period: dt.date, now: dt.datetime, result: BillingRunResult
) -> None:
    """Bill one batch of accounts in one transaction.

    Pre-rated usage: each usage line must be exactly the sum of the records
    linked to it: the line amounts are the month's unbilled usage plus what the
    line already bills; the records are linked after the lines exist; and a
    record that arrived in between (linked, but not in the amount) is caught by
    a second count and its line corrected before the transaction commits.

    Plans: the month is rated from scratch (`usage.selectors.rated_accounts_month`)
    and its lines replace every plan line of the invoice, so a re-run changes
    nothing and a back-dated plan change is reflected; each charge's metered
    records are linked to its first line, and a record that arrived while the
    lines were written makes the account be rated again.
    """
    # Locks in the documented order: accounts first (the invoices follow in
    # invoices_upsert_background_lines). A second run over the same accounts
    # waits here and then finds the work done. Subscriptions change under the
    # same account lock, so the plans read below stay as they are.
    currency_of = dict(
        Account.objects.select_for_update()
        .billable()
        .filter(pk__in=account_ids)
        .order_by("pk")
        .values_list("pk", "currency")
    )
    locked = sorted(currency_of)
    rated = selectors.rated_accounts_month(locked, period)
    refused = {}
    for pk, month in rated.items():
        others = sorted(month.currencies - {currency_of[pk]})
        if others:
            refused[pk] = (
                f"the plan's currency {', '.join(others)} differs from the account's "
                f"currency {currency_of[pk]}"
            )
    result.rejected.update(refused)
    billing = [pk for pk in locked if pk not in refused]

    unbilled = _usage_totals(
        UsageRecord.objects.unbilled(period).prerated().filter(account_id__in=billing)
    )
    # What the lines of the month's open or finalized background invoices
    # already bill: a re-run adds to it.
    usage = dict(unbilled)
    if unbilled:
        billed = _usage_totals(
            UsageRecord.objects.of_month(period).filter(
                account_id__in=sorted({account for account, _, _ in unbilled}),
                line_item__invoice__period=period,
                line_item__invoice__creation_type=Invoice.CreationType.BACKGROUND,
                line_item__invoice__state__in=Invoice.EDITABLE_STATES,
            )
        )
        for key, (records, cost, seconds) in billed.items():
            if key in usage:
                more = usage[key]
                usage[key] = (records + more[0], cost + more[1], seconds + more[2])
    prerated = _lines(period, usage)
    lines = {pk: (rated[pk].lines if pk in rated else []) + prerated.get(pk, []) for pk in billing}
    written = invoices_upsert_background_lines(
        period=period,
        lines_by_account=lines,
        actor=BILLING_ACTOR,
        reason=_reason(period),
        now=now,
        replace_prefixes=RATED_SOURCE_PREFIXES,
    )
    _add_written(result, written, period)
    done = [
        pk
        for pk in billing
        if pk not in written.skipped_issued
        and pk not in written.skipped_unbillable
        and pk not in written.rejected
    ]
    late = _link_rated(period, {pk: rated[pk] for pk in done if pk in rated}, written, done, result)
    for _ in range(3):
        # Metered records that arrived while the lines were written: rate those
        # accounts again (their lines then bill exactly the records linked).
        if not late:
            break
        again = selectors.rated_accounts_month(late, period)
        fixed = invoices_upsert_background_lines(
            period=period,
            lines_by_account={pk: again[pk].lines if pk in again else [] for pk in late},
            actor=BILLING_ACTOR,
            reason=_reason(period),
            now=now,
            replace_prefixes=RATED_SOURCE_PREFIXES,
        )
        result.amount = _sum_amounts(result.amount, fixed.amount)
        late = _link_rated(
            period, {pk: again[pk] for pk in late if pk in again}, fixed, late, result
        )

    if not unbilled:
        return
    links = {
        line_id: (account, service, region)
        for account, service, region in usage
        for line_id in (written.line_ids.get((account, usage_source(service, region))),)
        if line_id is not None
    }
    linked_now = _link_records(period, links)
    result.records_billed += linked_now
    # Records are only ever added (and other runs wait for the account locks),
    # so linking exactly as many records as were totalled means linking exactly
    # those: the usual case, with nothing more to check.
    if linked_now == sum(unbilled[key][0] for key in links.values() if key in unbilled):
        return

    # A record arrived in between: count every line against the records now linked to it.
    linked = {
        line_id: (records, cost or ZERO, seconds or 0)
        for line_id, records, cost, seconds in UsageRecord.objects.of_month(period)
        .filter(line_item_id__in=list(links))
        .order_by()
        .values("line_item_id")
        .annotate(records=Count("id"), cost=Sum("cost"), seconds=Sum("duration"))
        .values_list("line_item_id", "records", "cost", "seconds")
    }
    corrections: _Usage = {
        links[line_id]: totals
        for line_id, totals in linked.items()
        if totals != usage[links[line_id]]
    }
    if corrections:
        fixed = invoices_upsert_background_lines(
            period=period,
            lines_by_account=_lines(period, corrections),
            actor=BILLING_ACTOR,
            reason=_reason(period),
            now=now,
        )
        result.amount = _sum_amounts(result.amount, fixed.amount)


def _link_rated(
    period: dt.date,
    rated: dict[int, selectors.RatedMonth],
    written: BackgroundLinesResult,
    accounts: list[int],
    result: BillingRunResult,
) -> list[int]:
    """Link the metered records of `accounts` to the charge lines that bill them and
    unlink those no line bills any more; returns the accounts whose lines did
    not count the records now linked (a record arrived meanwhile)."""
    if not accounts:
        return []
    # (first, last) -> [(line_id, account_id, metric)]: usually one range, the whole month.
    by_days: dict[tuple[dt.date, dt.date], list[tuple[int, int, str]]] = defaultdict(list)
    expected: dict[int, tuple[int, int]] = {}
    for pk, month in rated.items():
        for link in month.links:
            line_id = written.line_ids.get((pk, link.source))
            if line_id is None:
                continue
            by_days[(link.first, link.last)].append((line_id, pk, link.metric))
            expected[line_id] = (pk, link.records)
    table = connection.ops.quote_name(UsageRecord._meta.db_table)
    # SQLite allows fewer variables per statement than PostgreSQL.
    chunk = 5000 if connection.vendor == "postgresql" else 200
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        for (first, last), rows in sorted(by_days.items()):
            start = dt.datetime.combine(first, dt.time.min, tzinfo=dt.UTC)
            end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)
            for offset in range(0, len(rows), chunk):
                part = rows[offset : offset + chunk]
                values = ", ".join(["(%s, %s, %s)"] * len(part))
                owners = sorted({account for _, account, _ in part})
                cursor.execute(
                    # VALUES columns are column1..3 (line, account, metric) on both
                    # PostgreSQL and SQLite. The account list lets the planner read
                    # the batch's accounts through the (account, start_time) index.
                    f"UPDATE {table} SET line_item_id = s.column1 FROM (VALUES {values}) AS s "
                    f"WHERE {table}.account_id IN ({', '.join(['%s'] * len(owners))}) "
                    f"AND {table}.account_id = s.column2 AND {table}.metric = s.column3 "
                    f"AND {table}.start_time >= %s AND {table}.start_time < %s "
                    f"AND ({table}.line_item_id IS NULL OR {table}.line_item_id <> s.column1)",
                    [
                        *(value for row in part for value in row),
                        *owners,
                        adapt(start),
                        adapt(end),
                    ],
                )
                result.records_billed += cursor.rowcount
    # Records a removed line billed were unlinked with it; these are records whose
    # line still exists but no longer bills them (their days changed plan). A
    # brand-new invoice has no such line.
    existing = [pk for pk in accounts if pk not in written.created_for]
    if existing:
        UsageRecord.objects.of_month(period).filter(
            account_id__in=existing, metric__isnull=False, line_item__isnull=False
        ).exclude(line_item_id__in=list(expected)).update(line_item=None)
    if not expected:
        return []
    linked = dict(
        UsageRecord.objects.of_month(period)
        .filter(line_item_id__in=list(expected))
        .order_by()
        .values("line_item_id")
        .annotate(records=Count("id"))
        .values_list("line_item_id", "records")
    )
    return sorted(
        {pk for line_id, (pk, records) in expected.items() if linked.get(line_id, 0) != records}
    )


def _reason(period: dt.date) -> str:
    return f"billing run {period:%Y-%m}"


def _sum_amounts(a: dict[str, Decimal], b: dict[str, Decimal]) -> dict[str, Decimal]:
    return {currency: a.get(currency, ZERO) + b.get(currency, ZERO) for currency in a | b}


def _add_written(result: BillingRunResult, written: BackgroundLinesResult, period) -> None:
    result.accounts += written.invoices_created + written.invoices_updated
    result.invoices_created += written.invoices_created
    result.invoices_updated += written.invoices_updated
    result.lines_created += written.lines_created
    result.lines_updated += written.lines_updated
    result.lines_removed += written.lines_removed
    result.amount = _sum_amounts(result.amount, written.amount)
    result.rejected.update(written.rejected)
    if written.skipped_issued:
        result.skipped_issued.update(_unbilled_counts(written.skipped_issued, period))
    if written.skipped_unbillable:
        result.skipped_unbillable.update(_unbilled_counts(written.skipped_unbillable, period))


def _link_records(period: dt.date, links: dict[int, tuple[int, str, str]]) -> int:
    """Point each unbilled record of the month at its line: {line_id: (account,
    service, region)}. One UPDATE per chunk of lines; returns the records linked."""
    if not links:
        return 0
    table = connection.ops.quote_name(UsageRecord._meta.db_table)
    rows = sorted(links.items())
    # SQLite allows fewer variables per statement than PostgreSQL.
    chunk = 5000 if connection.vendor == "postgresql" else 200
    linked = 0
    with connection.cursor() as cursor:
        for start in range(0, len(rows), chunk):
            part = rows[start : start + chunk]
            qs = (
                UsageRecord.objects.unbilled(period)
                .prerated()
                .filter(account_id__in=sorted({account for _, (account, _, _) in part}))
            )
            where, where_params = _where(qs)
            values = ", ".join(["(%s, %s, %s, %s)"] * len(part))
            cursor.execute(
                # VALUES columns are column1..4 (line, account, service, region)
                # on both PostgreSQL and SQLite.
                f"UPDATE {table} SET line_item_id = s.column1 FROM (VALUES {values}) AS s "
                f"WHERE {where} AND {table}.account_id = s.column2 "
                f"AND {table}.service = s.column3 AND {table}.region = s.column4",
                [
                    *(value for line_id, key in part for value in (line_id, *key)),
                    *where_params,
                ],
            )
            linked += cursor.rowcount
    return linked


def _where(qs) -> tuple[str, list]:
    """The WHERE clause of a queryset over one table, to reuse in a raw UPDATE."""
    compiler = qs.query.get_compiler(connection=connection)
    sql, params = compiler.compile(qs.query.where)
    return sql, list(params)
