"""Background work on usage (inline when no broker is configured)."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from billing.lib.months import parse_month, previous_month
from usage.partitions import AHEAD_MONTHS, partitions_ensure
from usage.services import usage_bill_month


@shared_task(name="usage.bill_month", acks_late=True)
def usage_bill_month_task(
    month: str | None = None, account_id: int | None = None, workers: int = 2
) -> dict:
    """The billing run for `month` (YYYY-MM), by default the month before today."""
    period = parse_month(month) if month else previous_month(timezone.now().date())
    return usage_bill_month(month=period, account_id=account_id, workers=workers).as_dict()


@shared_task(name="usage.ensure_partitions", acks_late=True)
def usage_ensure_partitions_task(ahead: int = AHEAD_MONTHS) -> dict:
    """PostgreSQL: the partitions of this month and `ahead` months after it, and of any
    month with records waiting in the DEFAULT partition (moved in). Daily; idempotent."""
    return partitions_ensure(ahead=ahead).as_dict()
