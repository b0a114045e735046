"""Charge issued invoices that are due; failed charges retry 3 days apart and the invoice is marked failed after the third."""

from __future__ import annotations

from invoices.jobs import invoices_charge
from invoices.management.invoice_job_command import InvoiceJobCommand


class Command(InvoiceJobCommand):
    help = "Charge issued invoices that are due; failed charges retry 3 days apart and the invoice is marked failed after the third. Safe to run twice at once or again after a crash."
    job = staticmethod(invoices_charge)
    verb = "charged"
