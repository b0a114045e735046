"""Plans, metrics and metered usage for the pricing tests."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from typing import Any

from usage.models import Metric, Plan, UsageRecord
from usage.subscriptions import metric_create, plan_create

_ids = itertools.count(1)

API_TIERS = [
    {"up_to": 1000, "unit_amount": Decimal("0"), "flat_amount": None},
    {"up_to": 10000, "unit_amount": Decimal("0.01")},
    {"up_to": None, "unit_amount": Decimal("0.005")},
]


def api_calls() -> Metric:
    return Metric.objects.filter(code="api_calls").first() or metric_create(
        code="api_calls", name="API calls", unit="calls", aggregation="sum"
    )


def scale_plan(code: str = "scale", **overrides) -> Plan:
    """The reference plan: 100.00 a month and graduated API calls (0-1,000 free, then 0.01, above 10,000 0.005)."""
    api_calls()
    values: dict[str, Any] = {
        "code": code,
        "name": "Scale",
        "currency": "USD",
        "amount": Decimal("100.00"),
        "charges": [{"metric": "api_calls", "model": "graduated", "tiers": API_TIERS}],
    }
    values.update(overrides)
    return plan_create(**values)


def metered(account, day: dt.date, quantity, *, metric: str = "api_calls", resource: str = ""):
    """A metered record on `day` at noon UTC."""
    start = dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC)
    return UsageRecord.objects.create(
        account=account,
        client_id=f"m-{next(_ids)}",
        resource_id=resource,
        service="",
        region="",
        start_time=start,
        end_time=start,
        duration=0,
        metric=metric,
        quantity=Decimal(quantity),
    )
