"""The /v1 representation of metrics, plans and subscriptions, and their request bodies.

Prices are JSON numbers (Decimal end to end), with up to 8 decimals; the
representation drops trailing zeros past the currency's minor unit.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rest_framework import serializers

from billing.api.fields import (
    DecimalNumberField,
    StrictDateField,
    StrictIntegerField,
    StrictSerializer,
)
from billing.lib.money import CURRENCIES, minor_units
from usage.models import (
    CODE_MAX,
    PRICE_DECIMAL_PLACES,
    QUANTITY_DECIMAL_PLACES,
    Charge,
    Metric,
    Plan,
    Subscription,
)
from usage.subscriptions import MAX_CHARGES, MAX_PRICE, MAX_TRIAL_DAYS

MAX_TIERS = 50
MAX_UNITS = Decimal("99999999999999")


def _trimmed(value: Decimal | None, places: int) -> Decimal | None:
    """50.00000000 -> 50.00 (places 2), 0.00500000 -> 0.005, 1000.0000 -> 1000 (places 0)."""
    if value is None:
        return None
    value = Decimal(value)
    normalized = value.normalize()
    exponent = normalized.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -places:
        return value.quantize(Decimal(1).scaleb(-places))
    return normalized


def _price(**kwargs) -> DecimalNumberField:
    return DecimalNumberField(
        min_value=Decimal(0), max_value=MAX_PRICE, decimal_places=PRICE_DECIMAL_PLACES, **kwargs
    )


def _units(**kwargs) -> DecimalNumberField:
    return DecimalNumberField(
        min_value=Decimal(0), max_value=MAX_UNITS, decimal_places=QUANTITY_DECIMAL_PLACES, **kwargs
    )


# --- output --------------------------------------------------------------------------


class MetricSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()
    unit = serializers.CharField()
    aggregation = serializers.ChoiceField(choices=Metric.Aggregation.choices)
    created_at = serializers.DateTimeField()


class TierSerializer(serializers.Serializer):
    up_to = DecimalNumberField(allow_null=True, help_text="Inclusive; null on the last tier.")
    unit_amount = DecimalNumberField()
    flat_amount = DecimalNumberField()


class ChargeSerializer(serializers.Serializer):
    metric = serializers.CharField(help_text="The metric's code.")
    model = serializers.ChoiceField(choices=Charge.Model.choices)
    unit_amount = DecimalNumberField()
    free_units = DecimalNumberField()
    package_size = serializers.IntegerField(allow_null=True)
    tiers = TierSerializer(many=True)

    def to_representation(self, charge: Charge) -> dict[str, Any]:
        places = minor_units(charge.plan.currency)
        return {
            "metric": charge.metric.code,
            "model": charge.model,
            "unit_amount": _trimmed(charge.unit_amount, places),
            "free_units": _trimmed(charge.free_units, 0),
            "package_size": charge.package_size,
            "tiers": [
                {
                    "up_to": _trimmed(tier["up_to"], 0) if tier["up_to"] is not None else None,
                    "unit_amount": _trimmed(Decimal(tier["unit_amount"]), places),
                    "flat_amount": _trimmed(Decimal(tier["flat_amount"]), places),
                }
                for tier in charge.tiers or []
            ],
        }


class PlanSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()
    currency = serializers.CharField()
    amount = DecimalNumberField(help_text="Recurring monthly fee, prorated by day.")
    setup_fee = DecimalNumberField(help_text="Once, in the month a subscription starts.")
    trial_days = serializers.IntegerField()
    charges = ChargeSerializer(many=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def to_representation(self, plan: Plan) -> dict[str, Any]:
        places = minor_units(plan.currency)
        charges = sorted(plan.charges.all(), key=lambda charge: charge.pk)
        for charge in charges:
            charge.plan = plan  # the currency, without a query per charge
        return {
            "id": plan.pk,
            "code": plan.code,
            "name": plan.name,
            "currency": plan.currency,
            "amount": _trimmed(plan.amount, places),
            "setup_fee": _trimmed(plan.setup_fee, places),
            "trial_days": plan.trial_days,
            "charges": [ChargeSerializer(charge).data for charge in charges],
            "created_at": serializers.DateTimeField().to_representation(plan.created_at),
            "updated_at": serializers.DateTimeField().to_representation(plan.updated_at),
        }


class SubscriptionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    customer_id = serializers.IntegerField()
    plan = serializers.CharField(help_text="The plan's code.")
    start_date = serializers.DateField()
    end_date = serializers.DateField(allow_null=True, help_text="The last day billed.")
    trial_end_date = serializers.DateField(allow_null=True, help_text="The last day of trial.")
    created_at = serializers.DateTimeField()

    def to_representation(self, subscription: Subscription) -> dict[str, Any]:
        def day(value):
            return value.isoformat() if value else None

        return {
            "id": subscription.pk,
            "customer_id": subscription.account_id,
            "plan": subscription.plan.code,
            "start_date": day(subscription.start_date),
            "end_date": day(subscription.end_date),
            "trial_end_date": day(subscription.trial_end_date),
            "created_at": serializers.DateTimeField().to_representation(subscription.created_at),
        }


# --- input ---------------------------------------------------------------------------


class TextField(serializers.CharField):
    """A JSON string: a number or a list is not silently turned into text."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        if "\x00" in data:
            raise serializers.ValidationError("must not contain NUL characters")
        return super().to_internal_value(data)


class MetricCreateSerializer(StrictSerializer):
    code = TextField(max_length=CODE_MAX, help_text="Unique, e.g. `api_calls`.")
    name = TextField(max_length=255)
    unit = TextField(max_length=64, required=False, allow_blank=True, default="")
    aggregation = serializers.ChoiceField(
        choices=Metric.Aggregation.choices, required=False, default=Metric.Aggregation.SUM
    )


class TierInputSerializer(StrictSerializer):
    up_to = _units(allow_null=True, help_text="Inclusive upper bound; null on the last tier.")
    unit_amount = _price()
    flat_amount = _price(required=False, allow_null=True)

    def validate(self, attrs: dict) -> dict:
        if "up_to" not in attrs:
            raise serializers.ValidationError({"up_to": ["This field is required (null last)."]})
        return attrs


class ChargeInputSerializer(StrictSerializer):
    metric = TextField(max_length=CODE_MAX, help_text="A metric's code.")
    model = serializers.ChoiceField(choices=Charge.Model.choices)
    unit_amount = _price(required=False, help_text="per_unit: per unit; package: per package.")
    free_units = _units(required=False, help_text="per_unit and package.")
    package_size = StrictIntegerField(required=False, min_value=1, max_value=10**12)
    # many=True hands max_length to the ListSerializer, which the stubs' signature omits.
    tiers = TierInputSerializer(many=True, required=False, allow_empty=False, max_length=MAX_TIERS)  # type: ignore[call-arg]


class _PlanFieldsSerializer(StrictSerializer):
    name = TextField(max_length=255)
    currency = serializers.ChoiceField(choices=[(c, c) for c in CURRENCIES], default="USD")
    amount = _price(required=False, default=Decimal(0))
    setup_fee = _price(required=False, default=Decimal(0))
    trial_days = StrictIntegerField(min_value=0, max_value=MAX_TRIAL_DAYS, default=0)
    # many=True hands max_length to the ListSerializer, which the stubs' signature omits.
    charges = ChargeInputSerializer(many=True, required=False, max_length=MAX_CHARGES)  # type: ignore[call-arg]


class PlanCreateSerializer(_PlanFieldsSerializer):
    code = TextField(max_length=CODE_MAX, help_text="Unique, e.g. `scale`.")


class PlanUpdateSerializer(_PlanFieldsSerializer):
    """PATCH: the fields given; `charges` replaces all the plan's charges."""

    tolerated_fields = frozenset({"id", "code", "created_at", "updated_at"})


class SubscriptionCreateSerializer(StrictSerializer):
    customer_id = StrictIntegerField(min_value=1, max_value=2**63 - 1)
    plan = TextField(max_length=CODE_MAX, help_text="The plan's code.")
    start_date = StrictDateField()


class ChangePlanSerializer(StrictSerializer):
    plan = TextField(max_length=CODE_MAX, help_text="The new plan's code.")
    date = StrictDateField(help_text="The first day on the new plan.")


class CancelSerializer(StrictSerializer):
    date = StrictDateField(help_text="The first day without the subscription.")
