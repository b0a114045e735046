"""Background work on invoices (inline when no broker is configured).

Imports run one way: tasks -> jobs -> services, tasks -> pdf -> models. The
services announce an issue with the `invoice_issued` signal; the receiver here
queues the rendering once the issuing transaction has committed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from celery import shared_task
from django.core.files.base import ContentFile
from django.db import transaction
from django.dispatch import receiver

from invoices.delivery import tasks as delivery_tasks  # noqa: F401 - registers its tasks
from invoices.einvoice.facturx import credit_note_stored_pdf_bytes, issued_pdf_bytes
from invoices.jobs import invoices_charge, invoices_finalize, invoices_issue
from invoices.models import CreditNote, Invoice, InvoiceEvent
from invoices.signals import credit_note_issued, invoice_issued


@shared_task(acks_late=True)
def invoice_render_pdf(invoice_id: int, force: bool = False) -> str:
    """Render an issued invoice's PDF once and store it through Django's storage."""
    invoice = Invoice.objects.select_related("account").get(pk=invoice_id)
    if not invoice.is_issued:
        return ""
    if invoice.pdf and not force:
        return invoice.pdf.name or ""
    content = issued_pdf_bytes(invoice)
    name = f"{invoice.friendly_id or invoice.pk}.pdf"
    invoice.pdf.save(name, ContentFile(content), save=False)
    # Only the file column changes: an issued invoice's content stays untouched.
    Invoice.objects.filter(pk=invoice.pk).update(pdf=invoice.pdf.name)
    InvoiceEvent.objects.create(
        invoice=invoice,
        kind=InvoiceEvent.Kind.PDF_RENDERED,
        actor="system:pdf",
        data={"file": invoice.pdf.name, "bytes": len(content)},
    )
    return invoice.pdf.name or ""


_RENDER_AFTER_ISSUE = "invoices.tasks.render_after_issue"


@receiver(invoice_issued, dispatch_uid=_RENDER_AFTER_ISSUE)
def _render_after_issue(sender, invoice_id: int, **kwargs) -> None:
    # After commit: a rolled-back issue renders nothing, and the slow rendering
    # never holds the invoice's row lock.
    transaction.on_commit(lambda: invoice_render_pdf.delay(invoice_id))


@contextmanager
def pdf_rendering_deferred() -> Iterator[None]:
    """Issue invoices without queueing their PDFs, for bulk loads (the demo data).

    An issued invoice without a stored file is rendered live when asked for (and
    not stored); `manage.py render_pdfs --missing` stores the files later.
    """
    invoice_issued.disconnect(dispatch_uid=_RENDER_AFTER_ISSUE)
    try:
        yield
    finally:
        invoice_issued.connect(_render_after_issue, dispatch_uid=_RENDER_AFTER_ISSUE)


@shared_task(acks_late=True)
def credit_note_render_pdf(credit_note_id: int, force: bool = False) -> str:
    """Render a credit note's PDF once and store it (its content never changes):
    Factur-X when the credit note can be an e-invoice, the plain PDF otherwise."""
    note = CreditNote.objects.select_related("invoice", "account").get(pk=credit_note_id)
    if note.pdf and not force:
        return note.pdf.name or ""
    content = credit_note_stored_pdf_bytes(note)
    note.pdf.save(f"{note.number}.pdf", ContentFile(content), save=False)
    CreditNote.objects.filter(pk=note.pk).update(pdf=note.pdf.name)
    return note.pdf.name or ""


@receiver(credit_note_issued, dispatch_uid="invoices.tasks.render_after_credit_note")
def _render_after_credit_note(sender, credit_note_id: int, **kwargs) -> None:
    transaction.on_commit(lambda: credit_note_render_pdf.delay(credit_note_id))


# The scheduled batch jobs (CELERY_BEAT_SCHEDULE); each one lives in invoices.jobs.


@shared_task(name="invoices.finalize_due", acks_late=True)
def invoices_finalize_task() -> dict:
    """Finalize the open invoices of ended months (the 1st of each month)."""
    return invoices_finalize().as_dict()


@shared_task(name="invoices.issue_due", acks_late=True)
def invoices_issue_task() -> dict:
    """Issue the invoices finalized at least two days ago (daily)."""
    return invoices_issue().as_dict()


@shared_task(name="invoices.charge_due", acks_late=True)
def invoices_charge_task() -> dict:
    """Charge the issued invoices whose (next) attempt is due (daily)."""
    return invoices_charge().as_dict()
