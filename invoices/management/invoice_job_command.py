"""The shared shape of the batch-job commands (finalize, issue, charge)."""

from __future__ import annotations

import sys
from collections.abc import Callable

from django.core.management.base import BaseCommand
from tqdm import tqdm


class InvoiceJobCommand(BaseCommand):
    """Runs one job of invoices.jobs with --dry-run, a progress bar and counts.

    Subclasses set `job` (the jobs function), `verb` ("charged") and `help`.
    Safe to run twice at once or again after a crash: each invoice is claimed
    under a row lock by the job itself.
    """

    job: Callable
    verb: str

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Count the invoices it would act on; change nothing",
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar")

    def handle(self, *args, **options) -> None:
        name = self.__module__.rsplit(".", 1)[-1]
        bar = tqdm(unit="invoice", file=sys.stderr, disable=options["no_progress"], desc=name)
        try:
            result = self.job(dry_run=options["dry_run"], progress=bar.update)
        finally:
            bar.close()
        if options["dry_run"]:
            self.stdout.write(f"[dry run] {result.candidates} invoices would be {self.verb}.")
            return
        self.stdout.write(
            f"{result.candidates} candidates: {result.done} {self.verb}, {result.failed} failed, "
            f"{result.skipped} skipped (taken by another run)."
        )
        for error in result.errors:
            self.stderr.write(error)
