"""Record today's payment reminders (INVOICE_REMINDER_DAYS) and overdue events; the
outbox sends them. Safe to run again: each reminder goes once per invoice and offset."""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand

from invoices.delivery import outbox
from invoices.delivery.email import reminders_send


class Command(BaseCommand):
    help = (
        "Send payment reminders before and after the due date (once per invoice and offset), "
        "then deliver the due outbox rows."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--date", type=dt.date.fromisoformat, help="Run as of this day.")

    def handle(self, *args, **options) -> None:
        counts = reminders_send(today=options["date"])
        swept = outbox.notifications_sweep()
        self.stdout.write(
            f"{counts['reminders']} reminder(s) and {counts['overdue']} overdue event(s) "
            f"recorded; {swept['sent']} message(s) sent."
        )
