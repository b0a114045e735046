"""Signals of the invoice domain: how services announce a change without
importing whoever reacts to it (invoices.tasks connects the receivers)."""

from __future__ import annotations

from django.dispatch import Signal

# Sent inside the issuing transaction with `invoice_id`; receivers that do slow
# work (the PDF) must defer it with `transaction.on_commit`.
invoice_issued = Signal()

# Sent inside the creating transaction with `credit_note_id` (same rule).
credit_note_issued = Signal()
