"""What subscriptions and billing runs announce: `subscription.created`,
`subscription.updated` (a plan change), `subscription.cancelled` and
`billing_run.completed`, recorded in the invoices app's outbox with the change."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.db import transaction

from invoices.delivery.endpoints import webhook_endpoint_create
from invoices.models import Notification
from tests.factories import AccountFactory
from tests.support.pricing import scale_plan
from tests.usage.test_billing_run import JAN, NOW, add
from usage import services
from usage.exceptions import PricingValidationError
from usage.subscriptions import (
    plan_create,
    subscription_cancel,
    subscription_change_plan,
    subscription_create,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def endpoint(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True
    return webhook_endpoint_create(url="http://127.0.0.1:9/hooks", events=["*"])


def _events(prefix: str) -> list[dict]:
    rows = Notification.objects.filter(channel="webhook", topic__startswith=prefix).order_by("id")
    return [json.loads(row.body) for row in rows]


def test_a_subscriptions_life_is_announced(endpoint):
    account = AccountFactory()
    plan = scale_plan()
    other = plan_create(code="other", name="Other", currency=plan.currency)
    subscription = subscription_create(account=account, plan=plan, start_date=dt.date(2026, 11, 1))
    moved = subscription_change_plan(
        subscription=subscription, plan=other, date=dt.date(2026, 11, 15)
    )
    subscription_cancel(subscription=moved, date=dt.date(2026, 12, 1))
    events = _events("subscription.")
    assert [e["type"] for e in events] == [
        "subscription.created",
        "subscription.updated",
        "subscription.cancelled",
    ]
    created, updated, cancelled = (e["data"] for e in events)
    assert (created["id"], created["customer_id"], created["plan"]) == (
        subscription.pk,
        account.pk,
        plan.code,
    )
    assert (updated["id"], updated["plan"], updated["start_date"]) == (
        moved.pk,
        "other",
        "2026-11-15",
    )
    assert updated["previous_subscription_id"] == subscription.pk
    assert (cancelled["id"], cancelled["end_date"]) == (moved.pk, "2026-11-30")


def test_a_refused_or_rolled_back_change_announces_nothing(endpoint):
    account = AccountFactory()
    plan = scale_plan()
    with pytest.raises(RuntimeError), transaction.atomic():
        subscription_create(account=account, plan=plan, start_date=dt.date(2026, 11, 1))
        raise RuntimeError("rolled back")
    subscription = subscription_create(account=account, plan=plan, start_date=dt.date(2026, 11, 1))
    with pytest.raises(PricingValidationError):  # the same plan
        subscription_change_plan(subscription=subscription, plan=plan, date=dt.date(2026, 11, 5))
    assert [e["type"] for e in _events("subscription.")] == ["subscription.created"]


def test_a_billing_run_announces_its_counts(endpoint):
    usd = AccountFactory(currency="USD")
    add(usd, "u1", "EC2", "us-west-1", "0.50")
    add(usd, "u2", "RDS", "us-west-1", "1.00")
    services.usage_bill_month(month=JAN, now=NOW, dry_run=True)
    assert _events("billing_run.") == []  # a dry run is not a run
    result = services.usage_bill_month(month=JAN, now=NOW)
    [event] = _events("billing_run.")
    assert event["type"] == "billing_run.completed"
    data = event["data"]
    assert data["month"] == "2022-01"
    assert (data["accounts"], data["invoices_created"], data["lines_created"]) == (1, 1, 2)
    assert data["records_billed"] == result.records_billed == 2
    assert data["amount"] == {"USD": str(result.amount["USD"])}
    assert data["accounts_skipped_issued"] == data["accounts_rejected"] == 0
