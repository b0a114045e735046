"""List, create and detach the monthly partitions of the usage records (PostgreSQL)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from billing.lib.months import month_argument
from usage.partitions import (
    AHEAD_MONTHS,
    DEFAULT_PARTITION,
    PartitionRefused,
    is_partitioned,
    month_partitions,
    partitions_detach,
    partitions_ensure,
)


class Command(BaseCommand):
    help = (
        "Usage records are partitioned by month on PostgreSQL. Without options, list the "
        "partitions; --ensure creates this month's and the next ones (what the daily task "
        "does); --detach-before YYYY-MM detaches every month before that one (all its "
        "records billed, unless --force), leaving each as a plain table to archive and drop."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--ensure", action="store_true", help="Create partitions ahead")
        parser.add_argument(
            "--ahead",
            type=int,
            default=AHEAD_MONTHS,
            help=f"With --ensure: months after the current one (default {AHEAD_MONTHS})",
        )
        parser.add_argument(
            "--detach-before", type=month_argument, help="YYYY-MM: detach the months before it"
        )
        parser.add_argument(
            "--drop", action="store_true", help="With --detach-before: drop the detached tables"
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="With --detach-before: detach months that still have unbilled records",
        )

    def handle(self, *args, **options) -> None:
        if not is_partitioned():
            raise CommandError(
                f"The usage records are not partitioned on this database ({connection.vendor}): "
                "only PostgreSQL partitions them."
            )
        if options["ahead"] < 0:
            raise CommandError("--ahead must be 0 or more.")
        if options["ensure"]:
            result = partitions_ensure(ahead=options["ahead"])
            created = ", ".join(result.created) or "none"
            self.stdout.write(
                f"Created: {created}; records moved from the DEFAULT partition: "
                f"{result.moved_from_default}"
            )
        if options["detach_before"]:
            try:
                detached = partitions_detach(
                    before=options["detach_before"], drop=options["drop"], force=options["force"]
                )
            except PartitionRefused as exc:
                raise CommandError(str(exc)) from None
            names = ", ".join(detached.detached) or "none"
            what = "Detached and dropped" if options["drop"] else "Detached"
            self.stdout.write(f"{what}: {names} ({detached.records:,} records)")
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid), c.reltuples::bigint, "
                "pg_total_relation_size(c.oid) FROM pg_inherits i "
                "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass "
                "ORDER BY c.relname",
                ["usage_usagerecord"],
            )
            rows = cursor.fetchall()
        months = set(month_partitions().values())
        for name, bound, estimate, size in rows:
            kind = "month" if name in months else ("default" if name == DEFAULT_PARTITION else "")
            self.stdout.write(
                f"{name:<34} {kind:<8} {bound:<78} ~{max(estimate, 0):>12,} rows "
                f"{size / 1e6:>10.1f} MB"
            )
