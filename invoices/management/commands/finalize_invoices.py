"""Finalize the open invoices of months that have ended (numbers them)."""

from __future__ import annotations

from invoices.jobs import invoices_finalize
from invoices.management.invoice_job_command import InvoiceJobCommand


class Command(InvoiceJobCommand):
    help = "Finalize the open invoices of months that have ended (numbers them). Safe to run twice at once or again after a crash."
    job = staticmethod(invoices_finalize)
    verb = "finalized"
