"""Bill a month's usage into background invoices (idempotent; safe to re-run after a crash)."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from tqdm import tqdm

from billing.lib.months import month_argument, previous_month
from usage.exceptions import InvalidBillingMonth
from usage.services import BILLING_BATCH_ACCOUNTS, usage_bill_month


class Command(BaseCommand):
    help = (
        "Turn a month's unbilled usage into background invoices: one per account, one line "
        "per service and region. Re-running adds only new usage to invoices still open or "
        "finalized and never touches issued ones."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--month", type=month_argument, help="YYYY-MM (default: last month)")
        parser.add_argument("--account", type=int, help="Bill only this account id")
        parser.add_argument(
            "--dry-run", action="store_true", help="Report what would be billed; change nothing"
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=BILLING_BATCH_ACCOUNTS,
            help=f"Accounts per transaction (default {BILLING_BATCH_ACCOUNTS})",
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=2,
            help="Batches billed at once, each on its own connection (PostgreSQL; default 2)",
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar")

    def handle(self, *args, **options) -> None:
        month = options["month"] or previous_month(timezone.now().date())
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        if not 1 <= options["workers"] <= 16:
            raise CommandError("--workers must be between 1 and 16")
        bar = tqdm(
            desc=f"billing {month:%Y-%m}",
            unit="account",
            file=sys.stderr,
            disable=options["no_progress"],
        )
        try:
            result = usage_bill_month(
                month=month,
                account_id=options["account"],
                dry_run=options["dry_run"],
                batch_size=options["batch_size"],
                workers=options["workers"],
                progress=bar.update,
            )
        except InvalidBillingMonth as exc:
            raise CommandError(exc.message) from None
        finally:
            bar.close()
        prefix = "[dry run] " if result.dry_run else ""
        amounts = ", ".join(f"{v} {c}" for c, v in sorted(result.amount.items())) or "nothing"
        self.stdout.write(
            f"{prefix}{month:%Y-%m}: {result.accounts} accounts billed, "
            f"{result.invoices_created} invoices created, {result.invoices_updated} updated, "
            f"{result.lines_created} lines created, {result.lines_updated} lines updated, "
            f"{result.lines_removed} lines removed, "
            f"{result.records_billed} records billed; added {amounts} (without VAT)."
        )
        for account_id, records in sorted(result.skipped_issued.items()):
            self.stdout.write(
                f"account {account_id}: {records} records left unbilled, "
                f"its {month:%Y-%m} invoice is already issued"
            )
        for account_id, records in sorted(result.skipped_unbillable.items()):
            self.stdout.write(
                f"account {account_id}: {records} records left unbilled, the account is deleted"
            )
        for account_id, why in sorted(result.rejected.items()):
            self.stdout.write(f"account {account_id}: not billed, {why}")
        for account_id, records in sorted(result.unrated.items()):
            self.stdout.write(
                f"account {account_id}: {records} metered records left unbilled, on days "
                "without a subscription or of a metric its plan does not charge"
            )
