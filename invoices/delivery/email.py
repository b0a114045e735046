"""The buyer's e-mails: the issued invoice (PDF attached), receipts (for the payment
that settles an invoice, and for a recorded payment that leaves something due),
credit notes (PDF attached), failed-charge notices and payment reminders, in the
seller's name, each with the hosted-page link (a credit note's: its own page).

Templates: `templates/emails/<kind>.txt` and `.html`. Reminders run daily
(`send_reminders`): each offset of INVOICE_REMINDER_DAYS (days after the due date,
negative before it) sends at most one reminder per invoice, whatever reruns.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from email.utils import formataddr, parseaddr

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from billing.lib.money import quantize
from invoices.delivery import outbox
from invoices.delivery.hosted import hosted_url
from invoices.delivery.models import Notification
from invoices.models import CreditNote, Invoice, PaymentTransaction

logger = logging.getLogger("billing.delivery")

# A reminder whose day was missed (the job did not run) is still sent this many days late.
REMINDER_CATCH_UP_DAYS = 2


def _subject(kind: str, invoice: Invoice, context: dict) -> str:
    number = invoice.friendly_id or invoice.pk
    seller = invoice.seller().get("name") or "Billing"
    if kind == "invoice_issued":
        return f"Invoice {number} from {seller}"
    if kind == "receipt":
        return f"Receipt for invoice {number}"
    if kind == "credit_note":
        return f"Credit note {context.get('number', '')} for invoice {number}"
    if kind == "payment_failed":
        return f"Payment failed for invoice {number}"
    if kind == "reminder":
        if context.get("offset", 0) < 0:
            return f"Invoice {number} is due on {invoice.due_on}"
        return f"Invoice {number} is overdue"
    return f"Invoice {number}"


def _pdf(invoice: Invoice) -> bytes:
    """The stored PDF of the issued invoice, rendered now if it is not stored yet."""
    from invoices.pdf import invoice_pdf_content

    return invoice_pdf_content(invoice)


def _credit_note_pdf(note: CreditNote) -> bytes:
    """The credit note's stored PDF, rendered now if it is not stored yet."""
    if note.pdf:
        with note.pdf.open("rb") as handle:
            return handle.read()
    from invoices.pdf import credit_note_pdf_bytes

    return credit_note_pdf_bytes(note)


def notification_email_send(notification: Notification) -> None:
    """Render and send one e-mail row through Django's configured backend."""
    invoice = notification.invoice
    assert invoice is not None
    extra = json.loads(notification.body or "{}")
    seller = invoice.seller()
    note = None
    if extra.get("credit_note_id"):
        note = CreditNote.objects.prefetch_related("lines").get(pk=extra["credit_note_id"])
        extra["number"] = note.number
    payment = invoice.successful_purchase()
    if extra.get("payment_id"):
        payment = PaymentTransaction.objects.get(pk=extra["payment_id"])
    context = {
        "invoice": invoice,
        "seller": seller,
        "buyer": invoice.buyer(),
        "amount": quantize(invoice.cost, invoice.currency),
        # A credit note's e-mail links to the credit note's own page.
        "hosted_url": hosted_url(note) if note is not None else hosted_url(invoice),
        "offset": extra.get("offset", 0),
        "days": abs(extra.get("offset", 0)),
        "payment": payment,
        # A receipt for a payment that leaves something due (amounts as recorded).
        "received": extra.get("received"),
        "amount_due": extra.get("amount_due"),
        "credit_note": note,
        "credit_total": quantize(note.cost, note.currency) if note else None,
    }
    kind = notification.topic
    text = render_to_string(f"emails/{kind}.txt", context)
    html = render_to_string(f"emails/{kind}.html", context)
    from_address = parseaddr(settings.DEFAULT_FROM_EMAIL)[1] or settings.DEFAULT_FROM_EMAIL
    domain = from_address.rpartition("@")[2] or "localhost"
    message = EmailMultiAlternatives(
        subject=_subject(kind, invoice, extra),
        body=text,
        from_email=formataddr((seller.get("name") or "Billing", from_address)),
        to=[notification.recipient],
        reply_to=[seller["email"]] if seller.get("email") else None,
        # The outbox id: a resent copy carries the same Message-ID.
        headers={"Message-ID": f"<{notification.message_id}@{domain}>"},
    )
    message.attach_alternative(html, "text/html")
    if kind == "invoice_issued":
        message.attach(f"{invoice.friendly_id or invoice.pk}.pdf", _pdf(invoice), "application/pdf")
    if note is not None:
        message.attach(f"{note.number}.pdf", _credit_note_pdf(note), "application/pdf")
    message.send(fail_silently=False)


def reminders_send(*, today: dt.date | None = None) -> dict:
    """Record the reminders due today (once per invoice and offset) and the
    `invoice.overdue` event (once per invoice); the outbox sends them."""
    now = timezone.now()
    today = today or timezone.localdate()
    counts = {"reminders": 0, "overdue": 0}
    for offset in sorted(settings.INVOICE_REMINDER_DAYS):
        latest_due = today - dt.timedelta(days=offset)
        earliest_due = latest_due - dt.timedelta(days=REMINDER_CATCH_UP_DAYS)
        candidates = Invoice.objects.outstanding().filter(
            due_on__lte=latest_due, due_on__gte=earliest_due
        )
        for invoice_id in candidates.values_list("pk", flat=True):
            dedupe = f"reminder:{invoice_id}:{offset}"
            if Notification.objects.filter(dedupe_key=f"{dedupe}:email").exists():
                continue
            with transaction.atomic():
                locked = Invoice.objects.select_for_update().select_related("account")
                invoice = locked.get(pk=invoice_id)
                if invoice.state not in Invoice.OUTSTANDING_STATES:
                    continue  # paid or cancelled since the query
                counts["reminders"] += len(
                    outbox.email_record(
                        invoice=invoice,
                        kind="reminder",
                        context={"offset": offset},
                        now=now,
                        dedupe=dedupe,
                    )
                )
    overdue = Invoice.objects.overdue(today).filter(
        due_on__gte=today - dt.timedelta(days=REMINDER_CATCH_UP_DAYS + 1)
    )
    for invoice_id in overdue.values_list("pk", flat=True):
        with transaction.atomic():
            invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
            counts["overdue"] += len(
                outbox.event_record(
                    event_type="invoice.overdue",
                    data=outbox.invoice_payload(invoice),
                    invoice=invoice,
                    now=now,
                    dedupe=f"overdue:{invoice_id}",
                )
            )
    return counts
