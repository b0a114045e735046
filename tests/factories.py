"""Factories for the domain models (one place for every test module)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import factory
from django.utils import timezone

from accounts.models import Account
from accounts.services import api_key_create
from invoices import services
from invoices.models import Invoice

ACTOR = "test"


class _AccountFactory(factory.django.DjangoModelFactory[Account]):
    class Meta:
        model = Account

    org_name = factory.Sequence(lambda n: f"Org {n}")
    billing_email = factory.Sequence(lambda n: f"billing{n}@example.test")
    address_line1 = "1 Main St"
    city = "Springfield"
    zip = "12345"
    country = "US"
    currency = "USD"
    vat_rate = None
    card_token = "tok_visa"


def AccountFactory(**fields: Any) -> Account:
    """A saved Account (typed: factory_boy's call does not say what it returns)."""
    return _AccountFactory.create(**fields)


def make_api_key(*, scope: str = "write", account: Account | None = None, **kwargs) -> tuple:
    """An (ApiKey, raw secret) pair."""
    return api_key_create(
        name=kwargs.pop("name", "test key"), scope=scope, account=account, **kwargs
    )


def make_invoice(
    *,
    account: Account | None = None,
    period: dt.date | None = None,
    lines: list[tuple[str, str]] | None = None,
    state: str = Invoice.State.OPEN,
    now: dt.datetime | None = None,
) -> Invoice:
    """An invoice built through the services, then moved to `state` the way staff would."""
    account = account or AccountFactory()
    now = now or timezone.now()
    invoice = services.invoice_create(account=account, period=period, actor=ACTOR, now=now)
    for quantity, price in lines if lines is not None else [("1", "100.00")]:
        services.line_item_add(
            invoice=invoice,
            name="Item",
            quantity=Decimal(quantity),
            unit_price=Decimal(price),
            actor=ACTOR,
            now=now,
        )
    path = {
        Invoice.State.OPEN: [],
        Invoice.State.FINALIZED: [Invoice.State.FINALIZED],
        Invoice.State.PENDING: [Invoice.State.PENDING],
        Invoice.State.UNPAID: [Invoice.State.PENDING, Invoice.State.UNPAID],
        Invoice.State.PAID: [Invoice.State.PENDING, Invoice.State.PAID],
        Invoice.State.FAILED: [Invoice.State.PENDING, Invoice.State.UNPAID, Invoice.State.FAILED],
        Invoice.State.CANCELLED: [Invoice.State.CANCELLED],
    }[Invoice.State(state)]
    for step in path:
        invoice = services.invoice_transition(invoice=invoice, to_state=step, actor=ACTOR, now=now)
    invoice.refresh_from_db()
    return invoice
