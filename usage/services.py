"""Writes of usage: ingestion and the monthly billing run.

Ingestion is all or nothing per batch, and idempotent through the client's
record id: the unique constraint on (account, client_id) decides which
records are new, so concurrent or repeated deliveries never store a record
twice. On PostgreSQL the batch is COPYed into a temporary staging table and
moved over with one INSERT ... SELECT ... ON CONFLICT DO NOTHING.

The billing run turns a month's unbilled usage into background invoices, one
line per service and region. It works in per-batch-of-accounts transactions,
so a run killed half-way leaves whole batches done or untouched, and a new
run finishes the job: every step is derived from what is still unbilled.
"""

from __future__ import annotations

import calendar
import contextlib
import datetime as dt
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection, connections, transaction
from django.db.models import Count, Model, Sum
from django.utils import timezone

from accounts.models import Account
from billing.lib.money import UNIT_PRICE_DECIMAL_PLACES, ZERO, line_cost
from invoices.models import Invoice, InvoiceEvent, LineItem
from invoices.services import invoice_totals
from usage.exceptions import (
    InvalidBillingMonth,
    UsageBatchEmpty,
    UsageBatchTooLarge,
    UsageRecordsInvalid,
)
from usage.models import Metric, UsageRecord
from usage.validation import COLUMNS, MAX_BATCH_RECORDS, CleanRecord, clean_record

BILLING_ACTOR = "system:billing_run"
USAGE_SOURCE_PREFIX = "usage:"
BILLING_BATCH_ACCOUNTS = 500
_UNIT_PRICE_PLACES = Decimal(1).scaleb(-UNIT_PRICE_DECIMAL_PLACES)


def month_bounds(period: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[first instant, first instant of the next month) of a month, in UTC."""
    start = dt.datetime(period.year, period.month, 1, tzinfo=dt.UTC)
    days = calendar.monthrange(period.year, period.month)[1]
    return start, start + dt.timedelta(days=days)


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
        known = set(Account.objects.alive().filter(pk__in=account_ids).values_list("pk", flat=True))
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


def _insert_postgresql(rows: list[CleanRecord]) -> int:
    """COPY into a per-connection staging table, then one conflict-ignoring INSERT.

    Returns how many rows were inserted; the rest were already stored.
    """
    table = UsageRecord._meta.db_table
    columns = ", ".join(COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(_STAGING_DDL)
        # Emptied at every commit; this also clears rows of an enclosing
        # transaction that has not committed yet (several batches in one).
        cursor.execute("DELETE FROM usage_staging")
        with cursor.cursor.copy(f"COPY usage_staging ({columns}) FROM STDIN") as copy:
            copy.write(_copy_text(rows))
        cursor.execute(
            f"INSERT INTO {table} ({columns}) SELECT {columns} FROM usage_staging "
            "ON CONFLICT (account_id, client_id) DO NOTHING"
        )
        return cursor.rowcount


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
    records_billed: int = 0
    # Net amount (without VAT) added to invoices by this run, per currency.
    amount: dict[str, Decimal] = field(default_factory=dict)
    # Accounts whose invoice for the month is already issued: their late usage
    # stays unbilled, {account_id: unbilled records}.
    skipped_issued: dict[int, int] = field(default_factory=dict)
    # Accounts with unbilled usage that are not active (suspended or deleted).
    skipped_inactive: dict[int, int] = field(default_factory=dict)

    def merge(self, other: BillingRunResult) -> None:
        """Add the counts of one batch, billed on another thread."""
        for name in ("accounts", "invoices_created", "invoices_updated", "lines_created",
                     "lines_updated", "records_billed"):  # fmt: skip
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for currency, amount in other.amount.items():
            self.amount[currency] = self.amount.get(currency, ZERO) + amount
        self.skipped_issued.update(other.skipped_issued)
        self.skipped_inactive.update(other.skipped_inactive)

    def as_dict(self) -> dict:
        return {
            "month": f"{self.month:%Y-%m}",
            "dry_run": self.dry_run,
            "accounts": self.accounts,
            "invoices_created": self.invoices_created,
            "invoices_updated": self.invoices_updated,
            "lines_created": self.lines_created,
            "lines_updated": self.lines_updated,
            "records_billed": self.records_billed,
            "amount": {currency: str(value) for currency, value in sorted(self.amount.items())},
            "skipped_issued": {str(k): v for k, v in sorted(self.skipped_issued.items())},
            "skipped_inactive": {str(k): v for k, v in sorted(self.skipped_inactive.items())},
        }


def validate_billing_month(month: dt.date, now: dt.datetime | None = None) -> dt.date:
    now = now or timezone.now()
    period = month.replace(day=1)
    if period < dt.date(2000, 1, 1) or period > now.date().replace(day=1):
        raise InvalidBillingMonth(
            f"Cannot bill {period:%Y-%m}: the month must be between 2000-01 and the current month."
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

    For every active account with unbilled usage in the month: its background
    invoice of the month (created if missing, extended while still open or
    finalized, never touched once issued) gets one usage line per service and
    region, whose amount is the sum of the records linked to it. A dry run
    does the same work inside a transaction that is rolled back, so its counts
    are exactly those of a real run. `workers` > 1 bills that many batches at
    once on separate database connections (PostgreSQL; batches never share an
    account, so they never wait for each other).
    """
    now = now or timezone.now()
    period = validate_billing_month(month, now)
    start, end = month_bounds(period)
    result = BillingRunResult(month=period, dry_run=dry_run)

    # Metered records (metric + quantity) are priced by the account's plan
    # (usage.rating), not summed here.
    unbilled = UsageRecord.objects.filter(
        line_item__isnull=True, metric__isnull=True, start_time__gte=start, start_time__lt=end
    )
    if account_id is not None:
        unbilled = unbilled.filter(account_id=account_id)
    candidates = sorted(set(unbilled.order_by().values_list("account_id", flat=True).distinct()))
    active = set(
        Account.objects.filter(pk__in=candidates, state=Account.State.ACTIVE).values_list(
            "pk", flat=True
        )
    )
    inactive = [pk for pk in candidates if pk not in active]
    if inactive:
        result.skipped_inactive = _unbilled_counts(inactive, start, end)
    billable = [pk for pk in candidates if pk in active]

    batches = [billable[i : i + batch_size] for i in range(0, len(billable), batch_size)]
    parallel = workers > 1 and not dry_run and connection.vendor == "postgresql"
    if parallel and len(batches) > 1:
        _bill_in_parallel(batches, period, start, end, now, result, workers, progress)
        return result
    outer = transaction.atomic() if dry_run else contextlib.nullcontext()
    with outer:
        for batch in batches:
            _bill_accounts(batch, period, start, end, now, result)
            if progress is not None:
                progress(len(batch))
        if dry_run:
            transaction.set_rollback(True)
    return result


def _bill_in_parallel(
    batches: list[list[int]],
    period: dt.date,
    start: dt.datetime,
    end: dt.datetime,
    now: dt.datetime,
    result: BillingRunResult,
    workers: int,
    progress: Callable[[int], None] | None,
) -> None:
    lock = threading.Lock()

    def bill(batch: list[int]) -> None:
        part = BillingRunResult(month=period)
        try:
            _bill_accounts(batch, period, start, end, now, part)
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


def _unbilled_counts(account_ids: Iterable[int], start, end) -> dict[int, int]:
    rows = (
        UsageRecord.objects.filter(
            account_id__in=list(account_ids),
            line_item__isnull=True,
            metric__isnull=True,
            start_time__gte=start,
            start_time__lt=end,
        )
        .order_by()
        .values("account_id")
        .annotate(records=Count("id"))
        .values_list("account_id", "records")
    )
    return dict(rows)


@transaction.atomic
def _bill_accounts(
    account_ids: list[int],
    period: dt.date,
    start: dt.datetime,
    end: dt.datetime,
    now: dt.datetime,
    result: BillingRunResult,
) -> None:
    """Bill one batch of accounts in one transaction."""
    # Locks in the documented order: accounts, then their invoices. A second
    # run over the same accounts waits here and then finds the work done.
    accounts = {
        account.pk: account
        for account in Account.objects.select_for_update()
        .filter(pk__in=account_ids, state=Account.State.ACTIVE)
        .order_by("pk")
    }
    invoices = {
        invoice.account_id: invoice
        for invoice in Invoice.objects.select_for_update()
        .filter(
            account_id__in=list(accounts),
            period=period,
            creation_type=Invoice.CreationType.BACKGROUND,
        )
        .exclude(state=Invoice.State.CANCELLED)
        .order_by("pk")
    }
    issued = [pk for pk, invoice in invoices.items() if not invoice.is_editable]
    if issued:
        result.skipped_issued.update(_unbilled_counts(issued, start, end))
    closed = set(issued)
    billable = [pk for pk in accounts if pk not in closed]
    if not billable:
        return

    groups: dict[int, dict[str, tuple[str, str]]] = defaultdict(dict)
    for account, service, region in (
        UsageRecord.objects.filter(
            account_id__in=billable,
            line_item__isnull=True,
            metric__isnull=True,
            start_time__gte=start,
            start_time__lt=end,
        )
        .order_by()
        .values_list("account_id", "service", "region")
        .distinct()
    ):
        groups[account].setdefault(usage_source(service, region), (service, region))
    if not groups:
        return

    new_invoices = [
        Invoice(
            account_id=pk,
            period=period,
            creation_type=Invoice.CreationType.BACKGROUND,
            state=Invoice.State.OPEN,
            currency=accounts[pk].currency,
            vat_rate=accounts[pk].vat_rate,
            vat_code=accounts[pk].vat_code,
            created_at=now,
            updated_at=now,
        )
        for pk in sorted(groups)
        if pk not in invoices
    ]
    Invoice.objects.bulk_create(new_invoices)
    created_ids = {invoice.pk for invoice in new_invoices}
    for invoice in new_invoices:
        invoices[invoice.account_id] = invoice
    InvoiceEvent.objects.bulk_create(
        InvoiceEvent(
            invoice=invoice,
            kind=InvoiceEvent.Kind.CREATED,
            actor=BILLING_ACTOR,
            to_state=Invoice.State.OPEN,
            reason=f"billing run {period:%Y-%m}",
            created_at=now,
            updated_at=now,
        )
        for invoice in new_invoices
    )

    touched = {pk: invoices[pk] for pk in groups}
    invoice_ids = [invoice.pk for invoice in touched.values()]
    account_of_invoice = {invoice.pk: pk for pk, invoice in touched.items()}
    existing = {
        (invoice_id, source)
        for invoice_id, source in LineItem.objects.filter(
            invoice_id__in=invoice_ids, source__startswith=USAGE_SOURCE_PREFIX
        ).values_list("invoice_id", "source")
    }
    _insert_rows(
        LineItem,
        ("invoice_id", "name", "description", "quantity", "unit_price", "cost", "type",
         "source", "contract_type", "created_at", "updated_at"),
        [
            (invoice.pk, f"{service} usage, {region}"[:255], "", Decimal(1), ZERO, ZERO,
             LineItem.Type.USAGE, source, "", now, now)
            for account_pk, sources in groups.items()
            for invoice in (touched[account_pk],)
            for source, (service, region) in sorted(sources.items())
            if (invoice.pk, source) not in existing
        ],
    )  # fmt: skip
    lines = {
        line_id: (invoice_id, source, unit_price, (invoice_id, source) not in existing)
        for line_id, invoice_id, source, unit_price in LineItem.objects.filter(
            invoice_id__in=invoice_ids, source__startswith=USAGE_SOURCE_PREFIX
        ).values_list("id", "invoice_id", "source", "unit_price")
    }

    result.records_billed += _link_records(invoice_ids, start, end)

    # Each usage line is the sum of every record linked to it, in this run or
    # earlier ones, so a line is always exactly what it bills.
    sums = (
        UsageRecord.objects.filter(
            account_id__in=list(touched),
            start_time__gte=start,
            start_time__lt=end,
            line_item__isnull=False,
        )
        .order_by()
        .values("line_item_id")
        .annotate(total=Sum("cost"), records=Count("id"), seconds=Sum("duration"))
        .values_list("line_item_id", "total", "records", "seconds")
    )
    changed_lines: list[tuple] = []
    billed_lines: set[int] = set()
    lines_per_invoice: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for line_id, total, records, seconds in sums:
        if line_id not in lines:
            continue  # a line of a cancelled invoice of the month
        invoice_id, source, unit_price_before, is_new = lines[line_id]
        billed_lines.add(line_id)
        unit_price = total.quantize(_UNIT_PRICE_PLACES)
        if not is_new and unit_price == unit_price_before:
            continue
        currency = accounts[account_of_invoice[invoice_id]].currency
        service, region = source[len(USAGE_SOURCE_PREFIX) :].split(":", 1)
        hours = (Decimal(seconds) / 3600).quantize(Decimal("0.01"))
        description = (
            f"{service} in {region}, {period:%B %Y}: {records} usage records, {hours} hours"
        )
        quantity = Decimal(1)
        changed_lines.append(
            (line_id, quantity, unit_price, line_cost(quantity, unit_price, currency), description, now)
        )  # fmt: skip
        lines_per_invoice[invoice_id][0 if is_new else 1] += 1
    # A line created for records that were linked elsewhere meanwhile bills nothing.
    empty = [line_id for line_id, line in lines.items() if line[3] and line_id not in billed_lines]
    if empty:
        LineItem.objects.filter(pk__in=empty).delete()
    _update_rows(
        LineItem, ("quantity", "unit_price", "cost", "description", "updated_at"), changed_lines
    )

    changed_invoice_ids = set(lines_per_invoice) | created_ids
    if not changed_invoice_ids:
        return
    line_totals = dict(
        LineItem.objects.filter(invoice_id__in=changed_invoice_ids)
        .order_by()
        .values("invoice_id")
        .annotate(total=Sum("cost"))
        .values_list("invoice_id", "total")
    )
    changed_invoices: list[tuple] = []
    events: list[InvoiceEvent] = []
    for invoice in touched.values():
        if invoice.pk not in changed_invoice_ids:
            continue
        account = accounts[invoice.account_id]
        before = ZERO if invoice.pk in created_ids else invoice.cost_without_vat
        cost_without_vat, vat, cost = invoice_totals(
            line_totals.get(invoice.pk) or ZERO,
            vat_rate=account.vat_rate,
            currency=account.currency,
        )
        changed_invoices.append(
            (invoice.pk, account.currency, account.vat_rate, account.vat_code,
             cost_without_vat, vat, cost, now)
        )  # fmt: skip
        added = cost_without_vat - before
        result.amount[account.currency] = result.amount.get(account.currency, ZERO) + added
        created, updated = lines_per_invoice.get(invoice.pk, [0, 0])
        result.lines_created += created
        result.lines_updated += updated
        if invoice.pk in created_ids:
            result.invoices_created += 1
        else:
            result.invoices_updated += 1
        events.append(
            InvoiceEvent(
                invoice_id=invoice.pk,
                kind=InvoiceEvent.Kind.LINE_ADDED,
                actor=BILLING_ACTOR,
                reason=f"billing run {period:%Y-%m}",
                data={
                    "lines_created": created,
                    "lines_updated": updated,
                    "cost_without_vat": str(cost_without_vat),
                    "added": str(added),
                },
                created_at=now,
                updated_at=now,
            )
        )
    _update_rows(
        Invoice,
        ("currency", "vat_rate", "vat_code", "cost_without_vat", "vat_amount", "cost",
         "updated_at"),
        changed_invoices,
    )  # fmt: skip
    InvoiceEvent.objects.bulk_create(events)
    result.accounts += len(changed_invoices)


def _link_records(invoice_ids: list[int], start: dt.datetime, end: dt.datetime) -> int:
    """Point each unbilled record of the month at its invoice's line; one statement.

    Records that arrived after the lines were chosen and have no line yet keep
    line_item NULL and are billed by the next run.
    """
    usage = UsageRecord._meta.db_table
    invoice = Invoice._meta.db_table
    line = LineItem._meta.db_table
    placeholders = ", ".join(["%s"] * len(invoice_ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {usage} AS u SET line_item_id = l.id "
            f"FROM {invoice} AS i JOIN {line} AS l ON l.invoice_id = i.id "
            f"WHERE i.id IN ({placeholders}) AND u.account_id = i.account_id "
            "AND l.source = %s || u.service || ':' || u.region "
            "AND u.line_item_id IS NULL AND u.metric IS NULL "
            "AND u.start_time >= %s AND u.start_time < %s",
            [
                *invoice_ids,
                USAGE_SOURCE_PREFIX,
                connection.ops.adapt_datetimefield_value(start),
                connection.ops.adapt_datetimefield_value(end),
            ],
        )
        return cursor.rowcount


def _insert_rows(model: type[Model], columns: Sequence[str], rows: list[tuple]) -> None:
    """Insert many rows given as tuples of column values; COPY on PostgreSQL."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        model._default_manager.bulk_create(
            [model(**dict(zip(columns, row, strict=True))) for row in rows], batch_size=500
        )
        return
    names = ", ".join(f'"{model._meta.get_field(c).column}"' for c in columns)
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f'COPY "{model._meta.db_table}" ({names}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row(row)


def _update_rows(model: type[Model], columns: Sequence[str], rows: list[tuple]) -> None:
    """Set `columns` of many rows, each given as (pk, *values).

    On PostgreSQL the values are COPYed into a temporary table and applied with
    one UPDATE ... FROM, instead of a statement (or a CASE branch) per row.
    """
    if not rows:
        return
    if connection.vendor != "postgresql":
        objects = []
        for pk, *values in rows:
            obj = model(pk=pk)
            for name, value in zip(columns, values, strict=True):
                setattr(obj, name, value)
            objects.append(obj)
        model._default_manager.bulk_update(objects, list(columns), batch_size=500)
        return
    meta = model._meta
    fields = [meta.get_field(name) for name in columns]
    staging = f"{meta.db_table}_changes"
    definition = ", ".join(f'"{f.column}" {f.db_type(connection)}' for f in fields)
    names = ", ".join(f'"{f.column}"' for f in fields)
    assignments = ", ".join(f'"{f.column}" = s."{f.column}"' for f in fields)
    with connection.cursor() as cursor:
        cursor.execute(
            f'CREATE TEMPORARY TABLE IF NOT EXISTS "{staging}" (id bigint, {definition}) '
            "ON COMMIT DROP"
        )
        cursor.execute(f'DELETE FROM "{staging}"')
        with cursor.cursor.copy(f'COPY "{staging}" (id, {names}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(
            f'UPDATE "{meta.db_table}" AS t SET {assignments} FROM "{staging}" AS s '
            "WHERE t.id = s.id"
        )
