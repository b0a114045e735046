"""Export invoices as CSV: the same file as the admin's "Export CSV" action."""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand
from tqdm import tqdm

from billing.lib.months import month_argument
from invoices.export import invoice_csv_lines
from invoices.models import Invoice


class Command(BaseCommand):
    help = (
        "Write invoices as CSV (one row per invoice, amounts to the currency's minor unit) "
        "to a file or stdout. Reads in chunks, so a million invoices take constant memory."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--month", type=month_argument, help="Only invoices of this period (YYYY-MM)"
        )
        parser.add_argument(
            "--state",
            action="append",
            choices=Invoice.State.values,
            default=[],
            help="Only invoices in this state (repeatable)",
        )
        parser.add_argument(
            "--output", "-o", help="Write to this file (default: stdout); replaced atomically"
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar")

    def handle(self, *args, **options) -> None:
        queryset = Invoice.objects.all()
        if options["month"]:
            queryset = queryset.filter(period=options["month"])
        if options["state"]:
            queryset = queryset.filter(state__in=options["state"])
        lines = invoice_csv_lines(queryset)
        output = options["output"]
        show_progress = bool(output) and not options["no_progress"]
        bar = tqdm(unit="row", file=sys.stderr, disable=not show_progress, desc="export")
        rows = -1  # the header is not a row
        if output:
            target = Path(output)
            # Write beside the target and rename, so a crash never leaves half a file.
            partial = target.with_name(target.name + ".partial")
            with partial.open("w", newline="", encoding="utf-8") as handle:
                for line in lines:
                    handle.write(line)
                    rows += 1
                    bar.update()
            partial.replace(target)
        else:
            for line in lines:
                self.stdout.write(line, ending="")
                rows += 1
        bar.close()
        if output:
            self.stdout.write(f"Exported {rows} invoice(s) to {output}.")
