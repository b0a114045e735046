"""The outbox: notifications recorded with the change, sent exactly once after commit.

Recording (`invoice_event_record`, `credit_note_issued_record`, `payment_event_record`,
`event_record` for any other event) happens inside the transaction of the service that
changes the invoice, so a rolled-back change leaves no message and a committed one
always has its message. After commit a task sends each row (`notification_send`):

1. claim: `filter(pk=..., state=pending, next_attempt_at<=now).update(state=sending)`;
   only the caller that changed one row sends, so a duplicated or retried task (a
   worker killed after the claim, `acks_late` redelivery) finds nothing to do;
2. send (SMTP, or the webhook POST);
3. mark `sent`; on an error put it back to `pending` with an exponential backoff,
   `attempts` and `last_error` visible, until the retry window (3 days) is over,
   then `failed` (and a webhook endpoint that kept failing is disabled).

A worker that dies between 1 and 3 leaves the row `sending`; the sweep moves it to
`unknown` after `STALE_CLAIM` and never re-sends it by itself: whether it went out
cannot be known, and a second copy is worse than a message staff resend by hand
(the resend carries the same Message-ID / `webhook-id`, so a receiver can drop it).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections.abc import Iterable

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from invoices.delivery.models import Notification, WebhookEndpoint
from invoices.models import CreditNote, Invoice, PaymentTransaction

logger = logging.getLogger("billing.delivery")

State = Invoice.State

RETRY_BASE = dt.timedelta(seconds=30)
RETRY_CAP = dt.timedelta(hours=12)
STALE_CLAIM = dt.timedelta(minutes=15)
SWEEP_BATCH = 500

# The e-mail each invoice event sends to the buyer (others send only webhooks).
EMAIL_FOR_EVENT = {
    "invoice.issued": "invoice_issued",
    "invoice.paid": "receipt",
    "invoice.payment_failed": "payment_failed",
}
# The webhook event a state change announces.
EVENT_FOR_STATE: dict[str, str] = {
    State.FINALIZED: "invoice.finalized",
    State.PENDING: "invoice.issued",
    State.PAID: "invoice.paid",
    State.CANCELLED: "invoice.cancelled",
}


def retry_delay(attempts: int) -> dt.timedelta:
    """30 s, 2 min, 8 min, ... x4 per attempt, at most 12 h between attempts."""
    return min(RETRY_BASE * (4 ** max(attempts - 1, 0)), RETRY_CAP)


def retry_window() -> dt.timedelta:
    return dt.timedelta(seconds=settings.DELIVERY_RETRY_WINDOW_SECONDS)


def invoice_payload(invoice: Invoice) -> dict:
    """The invoice in its /v1 representation (the webhook's `data`)."""
    from invoices.api.v1.serializers import InvoiceSerializer  # the API imports the services

    return InvoiceSerializer(invoice).data


def webhook_body(*, event_id: str, event_type: str, created_at: dt.datetime, data: dict) -> str:
    from billing.lib.json_codec import dumps

    return dumps(
        {
            "id": event_id,
            "type": event_type,
            "created_at": created_at.isoformat().replace("+00:00", "Z"),
            "data": data,
        }
    )


def send_after_commit(ids: list[int]) -> None:
    if not ids:
        return
    from invoices.delivery.tasks import notification_send_task

    def send() -> None:
        for pk in ids:
            notification_send_task.delay(pk)

    transaction.on_commit(send)


def _create(rows: Iterable[Notification]) -> list[int]:
    ids = []
    for row in rows:
        if row.dedupe_key and Notification.objects.filter(dedupe_key=row.dedupe_key).exists():
            continue
        row.save()
        ids.append(row.pk)
    return ids


def event_record(
    *,
    event_type: str,
    data: dict,
    invoice: Invoice | None = None,
    now: dt.datetime | None = None,
    dedupe: str | None = None,
) -> list[int]:
    """Record one webhook per enabled endpoint subscribed to `event_type`.

    The hook for every event type: a service that makes a change (a credit note,
    a payment, a subscription, a billing run) calls this inside its transaction.
    """
    now = now or timezone.now()
    endpoints = [e for e in WebhookEndpoint.objects.filter(enabled=True) if e.wants(event_type)]
    if not endpoints:
        return []
    body = webhook_body(
        event_id=f"evt_{uuid.uuid4().hex}", event_type=event_type, created_at=now, data=data
    )
    ids = _create(
        Notification(
            channel=Notification.Channel.WEBHOOK,
            topic=event_type,
            invoice=invoice,
            endpoint=endpoint,
            recipient=endpoint.url[:254],
            body=body,
            dedupe_key=f"{dedupe}:webhook:{endpoint.pk}" if dedupe else None,
            next_attempt_at=now,
            created_at=now,
        )
        for endpoint in endpoints
    )
    send_after_commit(ids)
    return ids


def email_record(
    *,
    invoice: Invoice,
    kind: str,
    context: dict | None = None,
    now: dt.datetime | None = None,
    dedupe: str | None = None,
) -> list[int]:
    """Record one e-mail about `invoice` to its account's billing address."""
    now = now or timezone.now()
    recipient = invoice.account.billing_email or invoice.buyer().get("email", "")
    if not recipient:
        return []
    ids = _create(
        [
            Notification(
                channel=Notification.Channel.EMAIL,
                topic=kind,
                invoice=invoice,
                recipient=recipient,
                body=json.dumps(context or {}),
                dedupe_key=f"{dedupe}:email" if dedupe else None,
                next_attempt_at=now,
                created_at=now,
            )
        ]
    )
    send_after_commit(ids)
    return ids


def invoice_event_record(
    invoice: Invoice, event_type: str, *, now: dt.datetime | None = None, dedupe: str | None = None
) -> list[int]:
    """Record what an invoice event sends: its webhooks, and the buyer's e-mail if any.

    Call it inside the transaction that makes the change (the invoice locked).
    """
    ids = event_record(
        event_type=event_type,
        data=invoice_payload(invoice),
        invoice=invoice,
        now=now,
        dedupe=dedupe,
    )
    kind = EMAIL_FOR_EVENT.get(event_type)
    if kind is not None:
        ids += email_record(invoice=invoice, kind=kind, now=now, dedupe=dedupe)
    return ids


def credit_note_issued_record(note: CreditNote, *, now: dt.datetime | None = None) -> list[int]:
    """A credit note's `credit_note.issued` webhooks and the buyer's e-mail (its PDF
    attached). Call it inside the transaction that creates the note."""
    from invoices.api.v1.serializers import CreditNoteSerializer

    dedupe = f"credit_note:{note.pk}"
    ids = event_record(
        event_type="credit_note.issued",
        data=CreditNoteSerializer(note).data,
        invoice=note.invoice,
        now=now,
        dedupe=dedupe,
    )
    ids += email_record(
        invoice=note.invoice,
        kind="credit_note",
        context={"credit_note_id": note.pk},
        now=now,
        dedupe=dedupe,
    )
    return ids


def payment_event_record(
    payment: PaymentTransaction, event_type: str, *, now: dt.datetime | None = None
) -> list[int]:
    """`payment.recorded` / `payment.refunded` for one payment row; a recorded payment
    that leaves something due also sends the buyer a receipt for it (one that settles
    the invoice does not: the transition to paid sends the receipt). Call it inside
    the transaction that writes the payment, after the invoice is updated."""
    from invoices.api.v1.serializers import payment_representation

    invoice = payment.invoice
    dedupe = f"payment:{payment.pk}"
    ids = event_record(
        event_type=event_type,
        data={**payment_representation(payment), "invoice_id": invoice.pk},
        invoice=invoice,
        now=now,
        dedupe=dedupe,
    )
    if event_type == "payment.recorded" and invoice.state != State.PAID:
        ids += email_record(
            invoice=invoice,
            kind="receipt",
            context={
                "payment_id": payment.pk,
                "received": str(payment.amount),
                "amount_due": str(invoice.amount_due()),
            },
            now=now,
            dedupe=dedupe,
        )
    return ids


def invoice_transition_record(invoice: Invoice, to_state: str, *, now: dt.datetime) -> None:
    """What a state change announces (called by the transition service, nowhere else)."""
    event_type = EVENT_FOR_STATE.get(to_state)
    if event_type is not None:
        invoice_event_record(invoice, event_type, now=now)


# --- sending -------------------------------------------------------------------------


def notification_claim(pk: int, now: dt.datetime) -> bool:
    """Take a due pending row for sending; False when someone else has it (or it is done)."""
    claimed = Notification.objects.filter(
        pk=pk, state=Notification.State.PENDING, next_attempt_at__lte=now
    ).update(
        state=Notification.State.SENDING,
        claimed_at=now,
        attempts=F("attempts") + 1,
        updated_at=now,
    )
    return claimed == 1


def _deliver(notification: Notification, now: dt.datetime) -> None:
    if notification.channel == Notification.Channel.EMAIL:
        from invoices.delivery.email import notification_email_send

        notification_email_send(notification)
    else:
        from invoices.delivery.webhooks import webhook_deliver

        webhook_deliver(notification, now)


def notification_send(pk: int, *, now: dt.datetime | None = None) -> str:
    """Send one outbox row if it is due and nobody has claimed it: "sent", "retry",
    "failed" or "skipped"."""
    now = now or timezone.now()
    if not notification_claim(pk, now):
        return "skipped"
    notification = Notification.objects.select_related("invoice__account", "endpoint").get(pk=pk)
    try:
        _deliver(notification, now)
    except Exception as exc:  # noqa: BLE001 - any failure is recorded and retried
        return _record_failure(notification, exc, now)
    Notification.objects.filter(pk=pk, state=Notification.State.SENDING).update(
        state=Notification.State.SENT, sent_at=timezone.now(), last_error="", updated_at=now
    )
    return "sent"


def _record_failure(notification: Notification, exc: Exception, now: dt.datetime) -> str:
    error = f"{type(exc).__name__}: {exc}"[:2000]
    endpoint = notification.endpoint
    permanent = getattr(exc, "permanent", False)
    expired = now - notification.created_at >= retry_window()
    if permanent or expired:
        Notification.objects.filter(pk=notification.pk).update(
            state=Notification.State.FAILED, last_error=error, updated_at=now
        )
        logger.warning("notification %s gave up: %s", notification.pk, error)
        if endpoint is not None and expired and endpoint.enabled:
            webhook_endpoint_disable(endpoint, reason=f"failing for {retry_window()}: {error}")
        return "failed"
    # `attempts` already counts this one (the claim added it).
    next_attempt_at = now + retry_delay(notification.attempts)
    Notification.objects.filter(pk=notification.pk).update(
        state=Notification.State.PENDING,
        last_error=error,
        next_attempt_at=next_attempt_at,
        updated_at=now,
    )
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        from invoices.delivery.tasks import notification_send_task

        notification_send_task.apply_async((notification.pk,), eta=next_attempt_at)
    # Inline (no broker), the sweep picks it up when it is due.
    return "retry"


def webhook_endpoint_disable(endpoint: WebhookEndpoint, *, reason: str) -> None:
    """Stop sending to an endpoint that keeps failing; staff see it in the admin."""
    now = timezone.now()
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        enabled=False, disabled_reason=reason[:255], disabled_at=now, updated_at=now
    )
    logger.error("webhook endpoint %s (%s) disabled: %s", endpoint.pk, endpoint.url, reason)


def notification_resend(notification: Notification, *, now: dt.datetime | None = None) -> bool:
    """Queue a message again (staff's resend, a webhook replay): same id, so a receiver
    that already has it can drop it. False when it is already queued or being sent."""
    now = now or timezone.now()
    requeued = Notification.objects.filter(
        pk=notification.pk,
        state__in=[Notification.State.SENT, Notification.State.FAILED, Notification.State.UNKNOWN],
    ).update(state=Notification.State.PENDING, next_attempt_at=now, last_error="", updated_at=now)
    if requeued:
        send_after_commit([notification.pk])
    return bool(requeued)


def notifications_sweep(*, now: dt.datetime | None = None, send_inline: bool = False) -> dict:
    """The periodic pass: give up on claims that never reported back, send what is due."""
    now = now or timezone.now()
    stale = Notification.objects.filter(
        state=Notification.State.SENDING, claimed_at__lt=now - STALE_CLAIM
    ).update(
        state=Notification.State.UNKNOWN,
        last_error="the worker sending it stopped before reporting; not re-sent automatically",
        updated_at=now,
    )
    if stale:
        logger.error("%s notification(s) in unknown state: resend them from the admin", stale)
    due = list(
        Notification.objects.filter(state=Notification.State.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at", "id")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    if send_inline or settings.CELERY_TASK_ALWAYS_EAGER:
        outcomes = [notification_send(pk, now=now) for pk in due]
        sent = outcomes.count("sent")
    else:
        from invoices.delivery.tasks import notification_send_task

        for pk in due:
            notification_send_task.delay(pk)
        sent = 0
    return {"stale": stale, "due": len(due), "sent": sent}
