"""The outbox, webhook endpoints, their delivery attempts and hosted-page link versions.

Imported by invoices.models, so these are models of the `invoices` app.
"""

from __future__ import annotations

import base64
import secrets

from django.db import models
from django.db.models import Q
from django.utils import timezone

from invoices.models import CreditNote, Invoice

EVENT_TYPES = (
    "invoice.created",
    "invoice.finalized",
    "invoice.issued",
    "invoice.paid",
    "invoice.payment_failed",
    "invoice.cancelled",
    "invoice.overdue",
    "credit_note.issued",
    "payment.recorded",
    "payment.refunded",
    "subscription.created",
    "subscription.updated",
    "subscription.cancelled",
    "billing_run.completed",
)


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: `whsec_` + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class WebhookEndpoint(models.Model):
    """A URL the provider receives signed events at (provider-wide, not per account)."""

    url = models.URLField(max_length=2048)
    description = models.CharField(max_length=255, blank=True)
    # Event types, or ["*"] for all of them.
    events = models.JSONField(default=list)
    secret = models.CharField(max_length=128, default=new_webhook_secret, editable=False)
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=255, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.url

    def wants(self, event_type: str) -> bool:
        return "*" in self.events or event_type in self.events


class Notification(models.Model):
    """One message to send (an e-mail or one webhook to one endpoint): the outbox row.

    Written in the transaction of the change that causes it; sent after commit by
    a task that claims it with a conditional UPDATE, so it goes out at most once.
    Its id is the message's idempotency key (Message-ID, `webhook-id`).
    """

    class Channel(models.TextChoices):
        EMAIL = "email", "E-mail"
        WEBHOOK = "webhook", "Webhook"

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        # Gave up (retries exhausted, endpoint disabled): staff may resend it.
        FAILED = "failed", "Failed"
        # Claimed by a worker that never reported back: it may or may not have
        # gone out, so it is never re-sent automatically; staff decide.
        UNKNOWN = "unknown", "Outcome unknown"

    channel = models.CharField(max_length=8, choices=Channel.choices)
    # The event type (`invoice.issued`) or, for e-mails, the message kind (`reminder`).
    topic = models.CharField(max_length=64)
    invoice = models.ForeignKey(
        Invoice, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    endpoint = models.ForeignKey(
        WebhookEndpoint,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notifications",
    )
    recipient = models.CharField(max_length=254, blank=True)
    # The webhook body exactly as signed and sent (fixed at record time), or the
    # e-mail's extra template context as JSON.
    body = models.TextField(blank=True)
    # Makes a once-only message (a reminder for one invoice and offset) unique.
    dedupe_key = models.CharField(max_length=128, null=True, blank=True)
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["dedupe_key"],
                condition=Q(dedupe_key__isnull=False),
                name="notification_dedupe_key_unique",
            ),
            models.CheckConstraint(
                name="notification_state_valid",
                condition=Q(state__in=["pending", "sending", "sent", "failed", "unknown"]),
            ),
        ]
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="notification_due_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.channel} {self.topic} #{self.pk} ({self.state})"

    @property
    def message_id(self) -> str:
        """The idempotency key the receiver sees (`webhook-id`, e-mail Message-ID)."""
        return f"msg_{self.pk}"


class WebhookAttempt(models.Model):
    """One HTTP attempt at delivering a webhook notification."""

    notification = models.ForeignKey(
        Notification, on_delete=models.CASCADE, related_name="webhook_attempts"
    )
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="attempts")
    success = models.BooleanField(default=False)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_excerpt = models.CharField(max_length=1024, blank=True)
    error = models.CharField(max_length=1024, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.endpoint_id} {self.response_status or self.error}"


class HostedLink(models.Model):
    """The current version of a document's hosted-page link (an invoice's or a credit
    note's, exactly one of the two); bumping it revokes every older link."""

    invoice = models.OneToOneField(
        Invoice, null=True, blank=True, on_delete=models.CASCADE, related_name="hosted_link"
    )
    credit_note = models.OneToOneField(
        CreditNote, null=True, blank=True, on_delete=models.CASCADE, related_name="hosted_link"
    )
    version = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["invoice_id", "credit_note_id"]
        constraints = [
            models.CheckConstraint(
                name="hosted_link_one_document",
                condition=(Q(invoice__isnull=False) & Q(credit_note__isnull=True))
                | (Q(invoice__isnull=True) & Q(credit_note__isnull=False)),
            ),
        ]

    def __str__(self) -> str:
        if self.credit_note_id:
            return f"credit note {self.credit_note_id} v{self.version}"
        return f"{self.invoice_id} v{self.version}"
