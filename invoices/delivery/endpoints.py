"""Writes to webhook endpoints (provider-wide configuration): create, update,
delete, roll the secret, send a test event."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from invoices.delivery import outbox
from invoices.delivery.models import (
    EVENT_TYPES,
    Notification,
    WebhookEndpoint,
    new_webhook_secret,
)
from invoices.exceptions import InvoiceValidationError


def _validate_url(url: str) -> str:
    schemes = {"https", "http"} if settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS else {"https"}
    parts = urlsplit(url)
    if parts.scheme not in schemes or not parts.hostname:
        raise InvoiceValidationError(
            f"must be an absolute {' or '.join(sorted(schemes))} URL", field="url"
        )
    return url


def _validate_events(events: list[str]) -> list[str]:
    if not events:
        raise InvoiceValidationError('name at least one event type, or "*"', field="events")
    unknown = [event for event in events if event != "*" and event not in EVENT_TYPES]
    if unknown:
        raise InvoiceValidationError(f"unknown event types: {', '.join(unknown)}", field="events")
    return ["*"] if "*" in events else sorted(set(events))


def webhook_endpoint_create(
    *, url: str, events: list[str], description: str = ""
) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(
        url=_validate_url(url), events=_validate_events(events), description=description
    )


def webhook_endpoint_update(endpoint: WebhookEndpoint, **changes) -> WebhookEndpoint:
    """Change url, events, description or enabled (re-enabling clears the reason)."""
    if "url" in changes:
        endpoint.url = _validate_url(changes["url"])
    if "events" in changes:
        endpoint.events = _validate_events(changes["events"])
    if "description" in changes:
        endpoint.description = changes["description"]
    if "enabled" in changes:
        endpoint.enabled = changes["enabled"]
        if endpoint.enabled:
            endpoint.disabled_reason = ""
            endpoint.disabled_at = None
    endpoint.save()
    return endpoint


def webhook_endpoint_delete(endpoint: WebhookEndpoint) -> None:
    endpoint.delete()


def webhook_endpoint_roll_secret(endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """A new signing secret; messages sent from now on are signed with it."""
    endpoint.secret = new_webhook_secret()
    endpoint.save(update_fields=["secret", "updated_at"])
    return endpoint


@transaction.atomic
def webhook_endpoint_test(endpoint: WebhookEndpoint) -> Notification:
    """Queue a `webhook.test` event to this endpoint only (sent after commit)."""
    now = timezone.now()
    notification = Notification.objects.create(
        channel=Notification.Channel.WEBHOOK,
        topic="webhook.test",
        endpoint=endpoint,
        recipient=endpoint.url[:254],
        body=outbox.webhook_body(
            event_id=f"evt_test_{endpoint.pk}_{int(now.timestamp())}",
            event_type="webhook.test",
            created_at=now,
            data={"endpoint_id": endpoint.pk},
        ),
        next_attempt_at=now,
        created_at=now,
    )
    outbox.send_after_commit([notification.pk])
    return notification
