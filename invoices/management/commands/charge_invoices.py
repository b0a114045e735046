"""Charge issued invoices that are due; failed charges retry 3 days apart and the invoice is marked failed after the third."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand
from tqdm import tqdm

from invoices.jobs import invoices_charge


class Command(BaseCommand):
    help = (
        "Charge issued invoices that are due; failed charges retry 3 days apart and the invoice is marked failed after the third. "
        "Safe to run twice at once or again after a crash: each invoice is claimed under a row lock."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Count the invoices it would act on; change nothing",
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar")

    def handle(self, *args, **options) -> None:
        bar = tqdm(
            unit="invoice", file=sys.stderr, disable=options["no_progress"], desc="charge_invoices"
        )
        try:
            result = invoices_charge(dry_run=options["dry_run"], progress=bar.update)
        finally:
            bar.close()
        if options["dry_run"]:
            self.stdout.write(f"[dry run] {result.candidates} invoices would be charged.")
            return
        self.stdout.write(
            f"{result.candidates} candidates: {result.done} charged, {result.failed} failed, "
            f"{result.skipped} skipped (taken by another run)."
        )
        for error in result.errors:
            self.stderr.write(error)
