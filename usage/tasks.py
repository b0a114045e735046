"""Background work on usage (inline when no broker is configured)."""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.utils import timezone

from usage.services import usage_bill_month


def previous_month(today: dt.date) -> dt.date:
    return (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1)


def parse_month(value: str) -> dt.date:
    """'YYYY-MM' -> the first day of that month; ValueError otherwise."""
    try:
        year, month = value.split("-")
        if len(year) != 4 or len(month) != 2:
            raise ValueError
        return dt.date(int(year), int(month), 1)
    except (AttributeError, TypeError, ValueError):
        raise ValueError(f"{value!r} is not a month as YYYY-MM") from None


@shared_task(name="usage.bill_month", acks_late=True)
def usage_bill_month_task(
    month: str | None = None, account_id: int | None = None, workers: int = 2
) -> dict:
    """The billing run for `month` (YYYY-MM), by default the month before today."""
    period = parse_month(month) if month else previous_month(timezone.now().date())
    return usage_bill_month(month=period, account_id=account_id, workers=workers).as_dict()
