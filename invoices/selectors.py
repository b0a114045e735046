"""Reads of invoices, shared by the APIs, the admin and the commands."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db.models import Q, QuerySet

from accounts.models import ApiKey
from invoices.models import Invoice


def invoice_visible_to(api_key: ApiKey | None) -> QuerySet[Invoice]:
    """Invoices an API key may see: all of them, or one account's."""
    qs = Invoice.objects.all()
    if api_key is not None and api_key.account_id is not None:
        qs = qs.filter(account_id=api_key.account_id)
    return qs


def invoice_list_due_for_charge(now: dt.datetime) -> QuerySet[Invoice]:
    """Issued invoices whose due date has come and whose last attempt is old enough."""
    retry_before = now - dt.timedelta(days=settings.CHARGE_RETRY_DAYS)
    return (
        Invoice.objects.filter(
            state__in=[Invoice.State.PENDING, Invoice.State.UNPAID], due_on__lte=now.date()
        )
        .filter(
            Q(last_charge_attempt_at__isnull=True) | Q(last_charge_attempt_at__lte=retry_before)
        )
        .order_by("due_on", "id")
    )


def invoice_list_to_finalize(now: dt.datetime) -> QuerySet[Invoice]:
    """Open invoices of months that have ended."""
    return Invoice.objects.filter(
        state=Invoice.State.OPEN, period__lt=now.date().replace(day=1)
    ).order_by("id")


def invoice_list_to_issue(now: dt.datetime, *, grace: dt.timedelta) -> QuerySet[Invoice]:
    """Finalized invoices whose review window (`grace`) has passed."""
    return Invoice.objects.filter(
        state=Invoice.State.FINALIZED, finalized_at__lte=now - grace
    ).order_by("id")
