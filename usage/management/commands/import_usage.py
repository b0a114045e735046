"""Import usage records from CSV or JSON Lines, a file or stdin, through the ingestion service."""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from accounts.models import Account
from usage.exceptions import UsageRecordsInvalid
from usage.services import usage_ingest
from usage.validation import MAX_BATCH_RECORDS

MAX_ERRORS_SHOWN = 50


class Command(BaseCommand):
    help = (
        "Import usage records from CSV (header: id, account_id, resource_id, resource_name, "
        "service, region, start_time, end_time, duration, cost) or JSON Lines, from a file or "
        "'-' for stdin. Records go through the ingestion service in batches; ids make it "
        "idempotent, so re-running after an interruption stores only what is missing."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", help="File to read, or - for stdin")
        parser.add_argument(
            "--format",
            choices=["csv", "jsonl"],
            help="Default: from the file name (.csv, else JSON Lines); stdin defaults to jsonl",
        )
        parser.add_argument("--account", type=int, help="Account id for records without account_id")
        parser.add_argument(
            "--batch-size", type=int, default=5000, help="Records per batch (default 5000)"
        )
        parser.add_argument("--dry-run", action="store_true", help="Validate only; store nothing")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar")

    def handle(self, *args, **options) -> None:
        batch_size = options["batch_size"]
        if not 1 <= batch_size <= MAX_BATCH_RECORDS:
            raise CommandError(f"--batch-size must be between 1 and {MAX_BATCH_RECORDS}")
        account_id = options["account"]
        if account_id is not None and not Account.objects.billable().filter(pk=account_id).exists():
            raise CommandError(f"Account {account_id} does not exist.")
        path = options["path"]
        fmt = options["format"] or ("csv" if path.lower().endswith(".csv") else "jsonl")
        if path == "-":
            stream = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8")
        else:
            try:
                stream = Path(path).open(encoding="utf-8", newline="")
            except OSError as exc:
                raise CommandError(f"Cannot read {path}: {exc.strerror}") from None
        totals = {"received": 0, "stored": 0, "duplicates": 0}
        bar = tqdm(unit="rec", file=sys.stderr, disable=options["no_progress"], desc="import")
        try:
            rows = _csv_rows(stream) if fmt == "csv" else _jsonl_rows(stream)
            batch: list[object] = []
            lines: list[int] = []
            for line, record in rows:
                batch.append(record)
                lines.append(line)
                if len(batch) == batch_size:
                    self._ingest(batch, lines, account_id, options["dry_run"], totals)
                    bar.update(len(batch))
                    batch, lines = [], []
            if batch:
                self._ingest(batch, lines, account_id, options["dry_run"], totals)
                bar.update(len(batch))
        finally:
            bar.close()
            if stream is not sys.stdin:
                stream.close()
        prefix = "[dry run] would store" if options["dry_run"] else "stored"
        self.stdout.write(
            f"received {totals['received']}, {prefix} {totals['stored']}, "
            f"duplicates {totals['duplicates']}"
        )

    def _ingest(self, batch, lines, account_id, dry_run, totals) -> None:
        try:
            result = usage_ingest(records=batch, account_id=account_id, dry_run=dry_run)
        except UsageRecordsInvalid as exc:
            self.stdout.write(
                f"received {totals['received']}, stored {totals['stored']}, "
                f"duplicates {totals['duplicates']} before the bad batch"
            )
            for error in exc.errors[:MAX_ERRORS_SHOWN]:
                self.stderr.write(
                    f"line {lines[error['index']]}: {error['field']}: {error['message']}"
                )
            if len(exc.errors) > MAX_ERRORS_SHOWN:
                self.stderr.write(f"... and {len(exc.errors) - MAX_ERRORS_SHOWN} more")
            raise CommandError(
                f"{exc.message} Earlier batches are stored; fix the file and run the "
                "command again (stored records count as duplicates)."
            ) from None
        totals["received"] += result.received
        totals["stored"] += result.stored
        totals["duplicates"] += result.duplicates


def _jsonl_rows(stream) -> Iterator[tuple[int, object]]:
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            yield number, orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise CommandError(f"line {number}: not valid JSON ({exc})") from None


def _csv_rows(stream) -> Iterator[tuple[int, object]]:
    reader = csv.DictReader(stream)
    if not reader.fieldnames or "id" not in reader.fieldnames:
        raise CommandError("The CSV needs a header row with at least an id column.")
    for record in reader:
        # Line numbers count the header, like a spreadsheet does.
        yield reader.line_num, {k: v for k, v in record.items() if k is not None}
