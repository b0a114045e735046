"""Issue the invoices finalized at least two days ago (freezes them, sets due dates, renders PDFs)."""

from __future__ import annotations

from invoices.jobs import invoices_issue
from invoices.management.invoice_job_command import InvoiceJobCommand


class Command(InvoiceJobCommand):
    help = "Issue the invoices finalized at least two days ago (freezes them, sets due dates, renders PDFs). Safe to run twice at once or again after a crash."
    job = staticmethod(invoices_issue)
    verb = "issued"
