"""Render the stored API representations of invoices that have none (or an old one)."""

from __future__ import annotations

import multiprocessing
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from invoices import representations
from invoices.models import Invoice


def _run_shard(shard: int, shards: int, batch_size: int) -> int:
    connections.close_all()  # a forked process opens its own connection
    return sum(representations.backfill(batch_size=batch_size, shard=shard, shards=shards))


class Command(BaseCommand):
    help = (
        "Render and store the API representations (3scale JSON and XML, /v1 JSON) of every "
        "invoice that has none of the current format version: after a bulk load, or a deploy "
        "that changed how invoices are rendered. Reads render missing ones anyway; this makes "
        "them fast from the first request. Safe to re-run and to run beside the application."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--batch-size", type=int, default=representations.BATCH_SIZE)
        parser.add_argument(
            "--processes", type=int, default=1, help="Render in this many processes (e.g. nproc)"
        )
        parser.add_argument("--dry-run", action="store_true", help="Count them; render nothing")

    def handle(self, *args, **options) -> None:
        batch_size, processes = options["batch_size"], options["processes"]
        if not 1 <= batch_size <= 10_000:
            raise CommandError("--batch-size must be from 1 to 10000")
        if not 1 <= processes <= 64:
            raise CommandError("--processes must be from 1 to 64")
        if options["dry_run"]:
            missing = len(representations.missing_ids(Invoice.objects.all()))
            self.stdout.write(f"{missing} invoices to render")
            return
        started = time.monotonic()
        if processes == 1:
            rendered = sum(representations.backfill(batch_size=batch_size))
        else:
            connections.close_all()
            context = multiprocessing.get_context("fork")
            with context.Pool(processes) as pool:
                rendered = sum(
                    pool.starmap(
                        _run_shard, [(shard, processes, batch_size) for shard in range(processes)]
                    )
                )
        seconds = time.monotonic() - started
        self.stdout.write(f"{rendered} invoices rendered in {seconds:.1f} s")
