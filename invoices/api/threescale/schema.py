"""OpenAPI descriptions of the 3scale wire shapes (documentation only: the
representations module writes the bytes). JSON shapes are described exactly;
XML bodies are described as strings in the `application/xml` media type."""

from __future__ import annotations

from decimal import Decimal

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema_serializer,
)
from rest_framework import serializers

from billing.api.threescale.schema import (
    ThreeScaleLinkSerializer,
    ThreeScaleMetadataSerializer,
)
from billing.lib.money import MAX_AMOUNT, QUANTITY_DECIMAL_PLACES
from invoices.models import Invoice
from invoices.services import MAX_QUANTITY

TARGET_STATES = [
    "finalized",
    "pending",
    "unpaid",
    "paid",
    "failed",
    "cancelled",
    "cancel",
]


def _money(**kwargs) -> serializers.DecimalField:
    return serializers.DecimalField(
        max_digits=18, decimal_places=4, coerce_to_string=False, **kwargs
    )


class ThreeScalePeriodSerializer(serializers.Serializer):
    begin = serializers.DateField()
    end = serializers.DateField()


class ThreeScaleInvoiceSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    friendly_id = serializers.CharField(
        required=False, help_text="Absent while the invoice is open (numbered when it leaves open)."
    )
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    state = serializers.ChoiceField(choices=Invoice.State.values)
    paid_at = serializers.DateTimeField(required=False)
    due_on = serializers.DateField(required=False)
    issued_on = serializers.DateField(required=False)
    currency = serializers.CharField()
    cost = _money(help_text="Total including VAT.")
    vat_rate = _money(allow_null=True)
    vat_amount = _money()
    cost_without_vat = _money()
    period = ThreeScalePeriodSerializer()
    creation_type = serializers.ChoiceField(choices=Invoice.CreationType.values)
    links = ThreeScaleLinkSerializer(many=True)


class ThreeScaleInvoiceEnvelopeSerializer(serializers.Serializer):
    invoice = ThreeScaleInvoiceSerializer()


# The list documents are one object ({"invoices": [...]}), not an array of them.
@extend_schema_serializer(many=False)
class ThreeScaleInvoiceListSerializer(serializers.Serializer):
    invoices = ThreeScaleInvoiceEnvelopeSerializer(many=True)
    metadata = ThreeScaleMetadataSerializer(
        required=False, help_text="Only when there is more than one page."
    )


class ThreeScaleLineItemSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    quantity = serializers.DecimalField(max_digits=18, decimal_places=4, coerce_to_string=False)
    cost = _money(help_text="The line total.")
    metric_id = serializers.IntegerField(required=False)
    type = serializers.ChoiceField(
        choices=["", "LineItem::PlanCost", "LineItem::VariableCost"], allow_blank=True
    )
    contract_id = serializers.IntegerField(required=False)
    contract_type = serializers.CharField(required=False)
    plan_id = serializers.IntegerField(required=False)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    links = ThreeScaleLinkSerializer(many=True)


class ThreeScaleLineItemEnvelopeSerializer(serializers.Serializer):
    line_item = ThreeScaleLineItemSerializer(required=False, help_text='A plain line (type "").')
    plan_cost = ThreeScaleLineItemSerializer(required=False, help_text="A LineItem::PlanCost line.")
    variable_cost = ThreeScaleLineItemSerializer(
        required=False, help_text="A LineItem::VariableCost line."
    )


@extend_schema_serializer(many=False)
class ThreeScaleLineItemListSerializer(serializers.Serializer):
    line_items = ThreeScaleLineItemEnvelopeSerializer(many=True)


class ThreeScalePaymentTransactionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    reference = serializers.CharField(required=False)
    success = serializers.BooleanField()
    amount = _money()
    currency = serializers.CharField()
    action = serializers.ChoiceField(choices=["purchase", "refund"])
    message = serializers.CharField(required=False)
    test = serializers.BooleanField()
    links = ThreeScaleLinkSerializer(many=True)


class ThreeScalePaymentTransactionEnvelopeSerializer(serializers.Serializer):
    payment_transaction = ThreeScalePaymentTransactionSerializer()


@extend_schema_serializer(many=False)
class ThreeScalePaymentTransactionListSerializer(serializers.Serializer):
    payment_transactions = ThreeScalePaymentTransactionEnvelopeSerializer(many=True)


class ThreeScaleInvoiceCreateSerializer(serializers.Serializer):
    account_id = serializers.IntegerField(help_text="The buyer account. Required.")
    period = serializers.CharField(
        required=False, help_text="YYYY-MM; defaults to the current UTC month."
    )


class ThreeScaleInvoiceUpdateSerializer(serializers.Serializer):
    period = serializers.CharField(required=False, help_text="YYYY-MM.")
    friendly_id = serializers.CharField(
        required=False, help_text="YYYY-MM-NNNNNNNN or YYYY-NNNNNNNN. Other keys are ignored."
    )


class ThreeScaleInvoiceStateSerializer(serializers.Serializer):
    state = serializers.ChoiceField(
        choices=TARGET_STATES, help_text="The target state (not an event); `cancel` = cancelled."
    )


class ThreeScaleLineItemCreateSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField(required=False, allow_blank=True)
    quantity = serializers.DecimalField(
        max_digits=14,
        decimal_places=QUANTITY_DECIMAL_PLACES,
        coerce_to_string=False,
        min_value=Decimal("0.0001"),
        max_value=MAX_QUANTITY,
        required=False,
        help_text="Defaults to 1 (a number or numeric text).",
    )
    cost = serializers.DecimalField(
        max_digits=14,
        decimal_places=2,
        coerce_to_string=False,
        min_value=Decimal(0),
        max_value=MAX_AMOUNT,
        help_text="The line total (not the unit price), a number or numeric text, not "
        "negative, with at most the currency's decimal places.",
    )
    type = serializers.ChoiceField(
        choices=["", "LineItem::PlanCost", "LineItem::VariableCost"],
        required=False,
        allow_blank=True,
    )
    metric_id = serializers.IntegerField(required=False)
    plan_id = serializers.IntegerField(required=False)
    contract_id = serializers.IntegerField(required=False)


LIST_PARAMETERS = [
    OpenApiParameter(
        "state",
        OpenApiTypes.STR,
        description="One or more states, comma-separated or repeated.",
        many=True,
        explode=True,
    ),
    OpenApiParameter(
        "month", OpenApiTypes.STR, description="YYYY-MM; an invalid month gives an empty list."
    ),
    OpenApiParameter("page", OpenApiTypes.INT, description="Defaults to 1."),
    OpenApiParameter(
        "per_page",
        OpenApiTypes.INT,
        description="Default 20. 1 to 500 (3scale's code; its reference says a maximum of "
        "20); any other value gives 20.",
    ),
    OpenApiParameter("number", OpenApiTypes.STR, description="Invoice number; `*` is a wildcard."),
    OpenApiParameter("year", OpenApiTypes.INT, description="Period year."),
    OpenApiParameter("month_number", OpenApiTypes.INT, description="Period month (1-12)."),
    OpenApiParameter("buyer_query", OpenApiTypes.STR, description="Part of the buyer's name."),
]
