"""The data the dashboard's tests read: paid, outstanding and declined invoices, usage."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from invoices import services
from invoices.exceptions import ChargeFailed
from tests.factories import AccountFactory, make_invoice
from usage.models import UsageRecord

NOW = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)


@pytest.fixture
def now() -> dt.datetime:
    return NOW


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def data(db):
    eur = AccountFactory(org_name="Euro Co", currency="EUR")
    usd = AccountFactory(org_name="Dollar Inc", currency="USD")
    declined = AccountFactory(org_name="Broke LLC", currency="USD", card_token="tok_chargeDeclined")
    sep = dt.datetime(2026, 9, 5, tzinfo=dt.UTC)
    oct_ = dt.datetime(2026, 10, 5, tzinfo=dt.UTC)
    # paid in September and October (EUR), October (USD)
    for when, lines in ((sep, [("1", "100.00")]), (oct_, [("1", "50.00")])):
        invoice = make_invoice(account=eur, lines=lines, state="pending", now=when)
        services.invoice_mark_paid(invoice=invoice, actor="t", reference="r", now=when)
    invoice = make_invoice(account=usd, lines=[("2", "30.00")], state="pending", now=oct_)
    services.invoice_mark_paid(invoice=invoice, actor="t", reference="r", now=oct_)
    # outstanding: one overdue (issued 60 days ago), one not yet due
    make_invoice(
        account=usd, lines=[("1", "70.00")], state="pending", now=NOW - dt.timedelta(days=60)
    )
    make_invoice(
        account=usd, lines=[("1", "5.00")], state="pending", now=NOW - dt.timedelta(days=2)
    )
    # a declined charge ten days ago
    failing = make_invoice(account=declined, lines=[("1", "9.99")], state="pending", now=NOW)
    with pytest.raises(ChargeFailed):
        services.invoice_charge(invoice=failing, actor="t", now=NOW - dt.timedelta(days=10))
    # usage in the last 30 days and older
    for n, (service, cost, days_ago) in enumerate(
        [("EC2", "1.50", 3), ("EC2", "2.25", 10), ("S3", "0.40", 5), ("EC2", "99", 45)]
    ):
        start = NOW - dt.timedelta(days=days_ago)
        UsageRecord.objects.create(
            account=usd, client_id=f"u{n}", resource_id="r", service=service, region="eu",
            start_time=start, end_time=start + dt.timedelta(hours=1), duration=3600,
            cost=Decimal(cost),
        )  # fmt: skip
    return eur, usd, declined
