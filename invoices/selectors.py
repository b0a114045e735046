"""Reads of invoices, shared by the APIs, the admin and the commands."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING

from django.conf import settings
from django.db.models import Prefetch, Q, QuerySet

from accounts.models import Account, ApiKey
from billing.lib.money import line_cost
from invoices.models import CreditNote, Invoice, LineItem, PaymentTransaction

if TYPE_CHECKING:
    from invoices.services import LineSpec


def invoice_visible_to(api_key: ApiKey | None) -> QuerySet[Invoice]:
    """Invoices an API key may see: all of them, or one account's."""
    qs = Invoice.objects.all()
    if api_key is not None and api_key.account_id is not None:
        qs = qs.filter(account_id=api_key.account_id)
    return qs


def invoice_list_with_details(api_key: ApiKey | None) -> QuerySet[Invoice]:
    """Visible invoices with their account, lines and successful purchase loaded up front.

    A page costs the same few queries whatever its size: the successful
    purchase lands in `successful_purchases` (a list of zero or one).
    """
    purchases = PaymentTransaction.objects.successful_purchases()
    return (
        invoice_visible_to(api_key)
        .select_related("account")
        .prefetch_related(
            "line_items",
            Prefetch("payment_transactions", queryset=purchases, to_attr="successful_purchases"),
        )
    )


def credit_note_list_with_details(api_key: ApiKey | None) -> QuerySet[CreditNote]:
    """Credit notes an API key may see (all, or its account's), newest first, with
    their invoice and lines loaded up front."""
    qs = CreditNote.objects.all()
    if api_key is not None and api_key.account_id is not None:
        qs = qs.filter(account_id=api_key.account_id)
    return qs.select_related("invoice").prefetch_related("lines").order_by("-created_at", "-id")


def invoice_list_due_for_charge(now: dt.datetime) -> QuerySet[Invoice]:
    """Issued invoices whose due date has come and whose last attempt is old enough."""
    retry_before = now - dt.timedelta(days=settings.CHARGE_RETRY_DAYS)
    return (
        # Outstanding but not failed (a failed invoice waits for staff): the
        # state + due_on index serves this.
        Invoice.objects.filter(
            state__in=[Invoice.State.PENDING, Invoice.State.UNPAID], due_on__lte=now.date()
        )
        # A deleted account is not charged (invoice_charge refuses it too).
        .exclude(account__state=Account.State.DELETED)
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


def invoice_visible_for_account(
    api_key: ApiKey | None, account_id: int
) -> QuerySet[Invoice] | None:
    """One account's invoices as a key may see them, deleted accounts included (their
    invoices stay); None when that account does not exist or the key may not see it."""
    if api_key is not None and api_key.account_id not in (None, account_id):
        return None
    if not Account.objects.filter(pk=account_id).exists():
        return None
    return Invoice.objects.filter(account_id=account_id)


def background_invoice_preview(
    *,
    account: Account,
    period: dt.date,
    lines: Sequence[LineSpec],
    replaced_prefixes: tuple[str, ...],
    now: dt.datetime,
) -> tuple[Invoice, list[LineItem]] | None:
    """The month's background invoice as a billing run writing `lines` would leave it,
    unsaved: its lines whose source starts with one of `replaced_prefixes` are
    replaced by `lines`, the others (added by staff) kept. None when the invoice is
    already issued (a run never touches it)."""
    existing = (
        Invoice.objects.filter(
            account=account, period=period, creation_type=Invoice.CreationType.BACKGROUND
        )
        .exclude(state=Invoice.State.CANCELLED)
        .first()
    )
    if existing is not None and not existing.is_editable:
        return None
    currency = account.currency
    kept = (
        [
            line
            for line in existing.line_items.all()
            if not line.source.startswith(replaced_prefixes)
        ]
        if existing is not None
        else []
    )
    computed = [
        LineItem(
            name=spec.name,
            description=spec.description,
            quantity=spec.quantity,
            unit_price=spec.unit_price,
            cost=line_cost(spec.quantity, spec.unit_price, currency),
            type=spec.type,
            source=spec.source,
        )
        for spec in lines
    ]
    invoice = existing or Invoice(
        account=account,
        period=period,
        state=Invoice.State.OPEN,
        creation_type=Invoice.CreationType.BACKGROUND,
        currency=currency,
        created_at=now,
        updated_at=now,
    )
    return invoice, kept + computed
