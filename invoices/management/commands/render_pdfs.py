"""Render and store the PDFs of issued invoices that have none yet."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q
from tqdm import tqdm

from billing.lib.months import month_argument
from invoices.models import Invoice
from invoices.tasks import invoice_render_pdf


class Command(BaseCommand):
    help = (
        "Render the stored PDF of issued invoices that have none (e.g. after a failed render "
        "or a storage restore). An invoice's PDF is rendered once: existing files are kept, "
        "so the command is safe to re-run after a crash."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--missing",
            action="store_true",
            help="Every issued invoice without a stored PDF",
        )
        parser.add_argument(
            "--invoice", type=int, action="append", default=[], help="This invoice id (repeatable)"
        )
        parser.add_argument(
            "--month", type=month_argument, help="Only invoices of this period (YYYY-MM)"
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Count the invoices; render nothing"
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar")

    def handle(self, *args, **options) -> None:
        if not options["missing"] and not options["invoice"]:
            raise CommandError("Say what to render: --missing, or --invoice ID.")
        # Cancelled invoices keep the PDF rendered at issue; drafts render on demand.
        queryset = Invoice.objects.filter(
            state__in=Invoice.ISSUED_STATES, issued_on__isnull=False
        ).filter(Q(pdf="") | Q(pdf__isnull=True))
        if options["invoice"]:
            queryset = queryset.filter(pk__in=options["invoice"])
        if options["month"]:
            queryset = queryset.filter(period=options["month"])
        ids = list(queryset.order_by("id").values_list("pk", flat=True))
        if options["dry_run"]:
            self.stdout.write(f"[dry run] {len(ids)} invoice(s) without a PDF would be rendered.")
            return
        rendered = failed = 0
        errors: list[str] = []
        bar = tqdm(ids, unit="pdf", file=sys.stderr, disable=options["no_progress"], desc="render")
        for invoice_id in bar:
            try:
                # The task skips an invoice whose file another run stored meanwhile.
                invoice_render_pdf(invoice_id)
            except Exception as exc:  # one broken invoice must not stop the batch
                failed += 1
                errors.append(f"invoice {invoice_id}: {type(exc).__name__}: {exc}")
            else:
                rendered += 1
        bar.close()
        self.stdout.write(f"Rendered {rendered}; {failed} failed; {len(ids)} selected.")
        for error in errors:
            self.stderr.write(error)
        if failed:
            raise CommandError(f"{failed} PDF(s) could not be rendered.")
