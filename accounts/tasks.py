"""Background work on accounts and API keys (inline when no broker is configured)."""

from __future__ import annotations

from celery import shared_task

from accounts.services import idempotency_keys_prune as prune


@shared_task(name="accounts.idempotency_keys_prune", acks_late=True)
def idempotency_keys_prune() -> int:
    """Delete stored idempotent responses past their 24 hours (hourly on the schedule)."""
    return prune()
