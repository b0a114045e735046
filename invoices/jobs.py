"""Batch jobs over invoices: finalize ended months, issue after review, charge what is due.

Commands and Celery tasks call these. Each invoice is claimed on its own:
re-read under a row lock (skipping rows another runner holds) and re-checked
against the job's condition, then handed to the one service that changes it.
Two runs at once therefore never act twice on one invoice, and a run killed
half-way is finished by the next one.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from invoices import selectors, services
from invoices.exceptions import ChargeFailed, InvoiceError
from invoices.models import Invoice

logger = logging.getLogger(__name__)

ACTOR_FINALIZE = "system:finalize_invoices"
ACTOR_ISSUE = "system:issue_invoices"
ACTOR_CHARGE = "system:charge_invoices"
# Finance reviews finalized invoices for this long before they are issued.
ISSUE_GRACE = dt.timedelta(days=2)


@dataclass
class JobResult:
    candidates: int = 0
    done: int = 0
    failed: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "candidates": self.candidates,
            "done": self.done,
            "failed": self.failed,
            "skipped": self.skipped,
        }


def _run(
    candidates: QuerySet[Invoice],
    act: Callable[[Invoice], object],
    *,
    dry_run: bool,
    progress: Callable[[int], None] | None,
) -> JobResult:
    result = JobResult()
    ids = list(candidates.values_list("pk", flat=True))
    result.candidates = len(ids)
    if dry_run:
        return result
    for pk in ids:
        try:
            with transaction.atomic():
                # The same condition as the selection, now under the row lock:
                # another runner may have handled the invoice meanwhile.
                invoice = candidates.select_for_update(skip_locked=True).filter(pk=pk).first()
                if invoice is None:
                    result.skipped += 1
                else:
                    try:
                        act(invoice)
                        result.done += 1
                    except ChargeFailed:
                        # Caught inside the transaction so that the declined
                        # attempt the service recorded is committed with it.
                        result.failed += 1
        except InvoiceError as exc:
            result.failed += 1
            result.errors.append(f"invoice {pk}: {exc.message}")
            logger.warning("invoice %s: %s", pk, exc.message)
        if progress is not None:
            progress(1)
    return result


def invoices_finalize(
    *,
    now: dt.datetime | None = None,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
) -> JobResult:
    """Finalize the open invoices of months that have ended."""
    now = now or timezone.now()
    return _run(
        selectors.invoice_list_to_finalize(now),
        lambda invoice: services.invoice_finalize(invoice=invoice, actor=ACTOR_FINALIZE, now=now),
        dry_run=dry_run,
        progress=progress,
    )


def invoices_issue(
    *,
    now: dt.datetime | None = None,
    grace: dt.timedelta = ISSUE_GRACE,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
) -> JobResult:
    """Issue the finalized invoices whose review window has passed."""
    now = now or timezone.now()
    return _run(
        selectors.invoice_list_to_issue(now, grace=grace),
        lambda invoice: services.invoice_issue(invoice=invoice, actor=ACTOR_ISSUE, now=now),
        dry_run=dry_run,
        progress=progress,
    )


def invoices_charge(
    *,
    now: dt.datetime | None = None,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
) -> JobResult:
    """Charge issued invoices that are due: retries 3 days apart, failed after the third.

    The charge service counts the attempts and moves the state; this job only
    picks the invoices whose next attempt has come.
    """
    now = now or timezone.now()
    return _run(
        selectors.invoice_list_due_for_charge(now),
        lambda invoice: services.invoice_charge(
            invoice=invoice, actor=ACTOR_CHARGE, automatic=True, now=now
        ),
        dry_run=dry_run,
        progress=progress,
    )
