"""Celery tasks of delivery (inline when no broker); imported by invoices.tasks."""

from __future__ import annotations

from celery import shared_task

from invoices.delivery import outbox


@shared_task(name="delivery.send", acks_late=True)
def notification_send_task(notification_id: int) -> str:
    """Send one outbox row (a no-op when it is not due or someone else claimed it)."""
    return outbox.notification_send(notification_id)


@shared_task(name="delivery.sweep", acks_late=True)
def notifications_sweep_task() -> dict:
    """Send the due pending rows (retries, rows whose task was lost); every minute."""
    return outbox.notifications_sweep()


@shared_task(name="delivery.send_reminders", acks_late=True)
def reminders_send_task() -> dict:
    """Record the day's payment reminders and overdue events (daily)."""
    from invoices.delivery.email import reminders_send

    return reminders_send()
