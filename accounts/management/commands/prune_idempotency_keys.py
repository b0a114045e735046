"""Delete stored Idempotency-Key responses whose 24 hours have passed."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from accounts.services import idempotency_keys_prune


class Command(BaseCommand):
    help = (
        "Delete stored Idempotency-Key responses whose 24 hours have passed. "
        "Safe to run at any time and again: it only removes expired rows."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Count the expired keys; delete nothing"
        )

    def handle(self, *args, **options) -> None:
        count = idempotency_keys_prune(dry_run=options["dry_run"])
        if options["dry_run"]:
            self.stdout.write(f"[dry run] {count} expired idempotency keys would be deleted.")
        else:
            self.stdout.write(f"Deleted {count} expired idempotency keys.")
