"""Background work on invoices (inline when no broker is configured)."""

from __future__ import annotations

from celery import shared_task
from django.core.files.base import ContentFile

from invoices.models import Invoice, InvoiceEvent


@shared_task(acks_late=True)
def invoice_render_pdf(invoice_id: int, force: bool = False) -> str:
    """Render an issued invoice's PDF once and store it through Django's storage."""
    from invoices.einvoice.facturx import issued_pdf_bytes

    invoice = Invoice.objects.select_related("account").get(pk=invoice_id)
    if not invoice.is_issued:
        return ""
    if invoice.pdf and not force:
        return invoice.pdf.name
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
    return invoice.pdf.name


# The scheduled batch jobs (CELERY_BEAT_SCHEDULE); each one lives in invoices.jobs.


@shared_task(name="invoices.finalize_due", acks_late=True)
def invoices_finalize_task() -> dict:
    """Finalize the open invoices of ended months (the 1st of each month)."""
    from invoices.jobs import invoices_finalize

    return invoices_finalize().as_dict()


@shared_task(name="invoices.issue_due", acks_late=True)
def invoices_issue_task() -> dict:
    """Issue the invoices finalized at least two days ago (daily)."""
    from invoices.jobs import invoices_issue

    return invoices_issue().as_dict()


@shared_task(name="invoices.charge_due", acks_late=True)
def invoices_charge_task() -> dict:
    """Charge the issued invoices whose (next) attempt is due (daily)."""
    from invoices.jobs import invoices_charge

    return invoices_charge().as_dict()
