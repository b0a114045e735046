"""The /v1 invoice representation (the short and the rich form in one) and request bodies.

Output: amounts are Decimals rounded to the invoice currency's minor unit and
rendered as JSON numbers. `amount` and `total` are the invoice's cost (VAT
included), `subtotal` its cost without VAT, `tax` the VAT; `date` is the issue
date (a draft's creation date), `due_date` the due date (none for a draft).

Input: the seed's `customer_id, amount, date, due_date`. `amount` is the net
amount of the one line the invoice gets, so for a customer with VAT the
answer's `total` is `amount` plus VAT. With `line_items`, `amount` is optional
and, when given, must equal the sum of the lines.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, cast

from rest_framework import serializers

from accounts.models import Account, ApiKey
from accounts.selectors import account_visible_to
from billing.api.fields import (
    DecimalNumberField,
    StrictBooleanField,
    StrictDateField,
    StrictIntegerField,
    StrictSerializer,
)
from billing.lib.money import (
    AMOUNT_DECIMAL_PLACES,
    MAX_AMOUNT,
    QUANTITY_DECIMAL_PLACES,
    UNIT_PRICE_DECIMAL_PLACES,
    line_cost,
    minor_units,
    quantize,
)
from invoices import services, tax
from invoices.models import CreditNote, CreditNoteLine, Invoice, LineItem, PaymentTransaction

DEFAULT_LINE_DESCRIPTION = "Amount due"
# Names the services use for a bad value -> the /v1 field that carried it.
_SERVICE_FIELDS = {
    "period": "date",
    "issued_on": "date",
    "due_on": "due_date",
    "account_id": "customer_id",
    "account": "customer_id",
    "name": "description",
    "unit_price": "price",
    "cost": "price",
    "paid_on": "date",
}


def v1_field(service_field: str) -> str:
    """`due_on` -> `due_date`; `line_items[2].unit_price` -> `line_items[2].price`."""
    prefix, dot, name = service_field.rpartition(".")
    return f"{prefix}{dot}{_SERVICE_FIELDS.get(name, name)}"


def _trimmed(value: Decimal, places: int) -> Decimal:
    """Drop trailing zeros past `places`: 2.0000 -> 2 (places 0), 50.00000000 -> 50.00 (2)."""
    normalized = value.normalize()
    exponent = normalized.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -places:
        return value.quantize(Decimal(1).scaleb(-places))
    return normalized


# --- output ----------------------------------------------------------------------


class AddressSerializer(serializers.Serializer):
    street = serializers.CharField()
    city = serializers.CharField()
    state = serializers.CharField()
    zip = serializers.CharField()
    country = serializers.CharField()


class CustomerSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    email = serializers.CharField()
    address = AddressSerializer()


class CardSerializer(serializers.Serializer):
    type = serializers.CharField(help_text="Card brand, e.g. Visa.")
    last4 = serializers.CharField()
    exp_month = serializers.IntegerField(allow_null=True)
    exp_year = serializers.IntegerField(allow_null=True)


class PaymentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    date = serializers.DateTimeField()
    amount = DecimalNumberField()
    currency = serializers.CharField()
    method = serializers.ChoiceField(choices=PaymentTransaction.Method.choices)
    reference = serializers.CharField()
    card = CardSerializer(allow_null=True)


class LineItemSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    description = serializers.CharField()
    quantity = DecimalNumberField()
    price = DecimalNumberField(help_text="Unit price.")
    subtotal = DecimalNumberField(help_text="quantity x price, rounded to the currency.")
    vat_category = serializers.ChoiceField(
        choices=tax.Category.choices,
        allow_null=True,
        help_text="The line's EN 16931 VAT category; null: the invoice's treatment (issuing "
        "writes the invoice's on every line without one).",
    )
    vat_rate = DecimalNumberField(allow_null=True, help_text="The line's VAT rate, percent.")


class InvoiceSerializer(serializers.Serializer):
    """An invoice. Built by hand in `to_representation` (one pass, no per-field
    overhead on a 100-item page); the declared fields describe it for OpenAPI."""

    id = serializers.IntegerField()
    customer_id = serializers.IntegerField()
    amount = DecimalNumberField(help_text="The invoice total (equal to `total`).")
    date = serializers.DateField(help_text="Issue date; for a draft, the day it was created.")
    due_date = serializers.DateField(allow_null=True)
    number = serializers.CharField(allow_null=True, help_text="Assigned when it leaves `open`.")
    period = serializers.CharField(help_text="The billed month, YYYY-MM.")
    currency = serializers.CharField()
    subtotal = DecimalNumberField(help_text="Total without VAT.")
    tax = DecimalNumberField(help_text="VAT.")
    total = DecimalNumberField()
    status = serializers.ChoiceField(choices=Invoice.State.choices)
    amount_paid = DecimalNumberField(
        help_text="Money received and kept on the invoice (payments, less refunds and what "
        "went on to the customer's credit balance)."
    )
    amount_credited = DecimalNumberField(help_text="The total of the invoice's credit notes.")
    credit_applied = DecimalNumberField(
        help_text="The customer's credit balance consumed when the invoice was issued."
    )
    amount_due = DecimalNumberField(
        help_text="total - amount_paid - amount_credited - credit_applied (0 for a draft or a "
        "cancelled invoice)."
    )
    line_items = LineItemSerializer(many=True)
    customer = CustomerSerializer()
    payment = PaymentSerializer(allow_null=True, help_text="The successful payment, if any.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def to_representation(self, invoice: Invoice) -> dict[str, Any]:
        currency = invoice.currency
        total = quantize(invoice.cost, currency)
        return {
            "id": invoice.pk,
            "customer_id": invoice.account_id,
            "amount": total,
            "date": (invoice.issued_on or invoice.created_at.date()).isoformat(),
            "due_date": invoice.due_on.isoformat() if invoice.due_on else None,
            "number": invoice.friendly_id,
            "period": invoice.period.strftime("%Y-%m"),
            "currency": currency,
            "subtotal": quantize(invoice.cost_without_vat, currency),
            "tax": quantize(invoice.vat_amount, currency),
            "total": total,
            "status": invoice.state,
            "amount_paid": quantize(invoice.amount_paid, currency),
            "amount_credited": quantize(invoice.amount_credited, currency),
            "credit_applied": quantize(invoice.credit_applied, currency),
            "amount_due": quantize(invoice.amount_due(), currency),
            "line_items": [_line_item(line, currency) for line in invoice.line_items.all()],
            "customer": _customer(invoice),
            "payment": _payment(invoice),
            "created_at": _timestamp(invoice.created_at),
            "updated_at": _timestamp(invoice.updated_at),
        }


def _timestamp(value: dt.datetime) -> str:
    return serializers.DateTimeField().to_representation(value)


def _line_item(line: LineItem, currency: str) -> dict[str, Any]:
    return {
        "id": line.pk,
        "description": line.description or line.name,
        "quantity": _trimmed(line.quantity, 0),
        "price": _trimmed(line.unit_price, minor_units(currency)),
        "subtotal": quantize(line.cost, currency),
        "vat_category": line.vat_category,
        "vat_rate": line.vat_rate,
    }


def _street(line1: str, line2: str) -> str:
    return ", ".join(part for part in (line1, line2) if part)


def _customer(invoice: Invoice) -> dict[str, Any]:
    details = invoice.buyer()  # frozen at issue once issued, the live account before
    return {
        "id": details.get("id", invoice.account_id),
        "name": details.get("org_name", ""),
        "email": details.get("email", ""),
        "address": {
            "street": _street(details.get("address_line1", ""), details.get("address_line2", "")),
            "city": details.get("city", ""),
            "state": details.get("state", ""),
            "zip": details.get("zip", ""),
            "country": details.get("country", ""),
        },
    }


def _payment(invoice: Invoice) -> dict[str, Any] | None:
    payment = invoice.successful_purchase()
    if payment is None:
        return None
    return payment_representation(payment)


def payment_representation(payment: PaymentTransaction) -> dict[str, Any]:
    """One payment or refund as `PaymentSerializer` describes it."""
    card = None
    if payment.card_last4:
        card = {
            "type": payment.card_brand,
            "last4": payment.card_last4,
            "exp_month": payment.card_exp_month,
            "exp_year": payment.card_exp_year,
        }
    return {
        "id": payment.pk,
        "date": _timestamp(payment.created_at),
        "amount": quantize(payment.amount, payment.currency),
        "currency": payment.currency,
        "method": payment.method,
        "reference": payment.reference,
        "card": card,
    }


class CreditNoteLineSerializer(serializers.Serializer):
    line_item_id = serializers.IntegerField(
        allow_null=True, help_text="The credited invoice line; null for a credit by amount."
    )
    description = serializers.CharField()
    quantity = DecimalNumberField()
    price = DecimalNumberField(help_text="Unit price (the invoice line's).")
    subtotal = DecimalNumberField()


class CreditNoteSerializer(serializers.Serializer):
    """A credit note: its own number, the invoice's parties, currency and VAT rate."""

    id = serializers.IntegerField()
    number = serializers.CharField(help_text="CN-YYYY-NNNNNNNN, a gap-free series of its own.")
    invoice_id = serializers.IntegerField()
    invoice_number = serializers.CharField()
    customer_id = serializers.IntegerField()
    date = serializers.DateField()
    reason = serializers.CharField()
    currency = serializers.CharField()
    vat_rate = DecimalNumberField(allow_null=True)
    tax_category = serializers.CharField(help_text="The invoice's EN 16931 VAT category.")
    tax_mention = serializers.CharField(help_text="The invoice's legal VAT mention, if any.")
    subtotal = DecimalNumberField(help_text="Credited amount without VAT.")
    tax = DecimalNumberField(help_text="Credited VAT.")
    total = DecimalNumberField(help_text="subtotal + tax.")
    amount_due_reduced = DecimalNumberField(help_text="Deducted from what was still due.")
    amount_refunded = DecimalNumberField(help_text="Refunded through the payment gateway.")
    amount_to_balance = DecimalNumberField(help_text="Added to the customer's credit balance.")
    lines = CreditNoteLineSerializer(many=True)
    customer = CustomerSerializer()
    created_at = serializers.DateTimeField()

    def to_representation(self, note: CreditNote) -> dict[str, Any]:
        currency = note.currency
        buyer = note.buyer_details or {}
        return {
            "id": note.pk,
            "number": note.number,
            "invoice_id": note.invoice_id,
            "invoice_number": note.invoice.friendly_id,
            "customer_id": note.account_id,
            "date": note.issued_on.isoformat(),
            "reason": note.reason,
            "currency": currency,
            "vat_rate": note.vat_rate,
            "tax_category": note.tax_category,
            "tax_mention": note.tax_mention,
            "subtotal": quantize(note.cost_without_vat, currency),
            "tax": quantize(note.vat_amount, currency),
            "total": quantize(note.cost, currency),
            "amount_due_reduced": quantize(note.amount_due_reduced, currency),
            "amount_refunded": quantize(note.amount_refunded, currency),
            "amount_to_balance": quantize(note.amount_to_balance, currency),
            "lines": [_credit_line(line, currency) for line in note.lines.all()],
            "customer": {
                "id": buyer.get("id", note.account_id),
                "name": buyer.get("org_name", ""),
                "email": buyer.get("email", ""),
                "address": {
                    "street": _street(
                        buyer.get("address_line1", ""), buyer.get("address_line2", "")
                    ),
                    "city": buyer.get("city", ""),
                    "state": buyer.get("state", ""),
                    "zip": buyer.get("zip", ""),
                    "country": buyer.get("country", ""),
                },
            },
            "created_at": _timestamp(note.created_at),
        }


def _credit_line(line: CreditNoteLine, currency: str) -> dict[str, Any]:
    return {
        "line_item_id": line.line_item_id,
        "description": line.name,
        "quantity": _trimmed(line.quantity, 0),
        "price": _trimmed(line.unit_price, minor_units(currency)),
        "subtotal": quantize(line.cost, currency),
    }


# --- input -----------------------------------------------------------------------
# The request bodies are shaped and checked here; what may happen to an invoice
# (issue dates, due dates, totals, states) is decided by invoices.services.


class LineItemInputSerializer(StrictSerializer):
    tolerated_fields = frozenset({"id", "subtotal"})

    description = serializers.CharField(max_length=255)
    quantity = DecimalNumberField(
        required=False,
        min_value=Decimal(0),
        min_exclusive=True,
        max_value=services.MAX_QUANTITY,
        decimal_places=QUANTITY_DECIMAL_PLACES,
    )
    price = DecimalNumberField(
        min_value=Decimal(0), max_value=MAX_AMOUNT, decimal_places=UNIT_PRICE_DECIMAL_PLACES
    )
    vat_category = serializers.ChoiceField(
        choices=tax.Category.choices,
        required=False,
        allow_null=True,
        help_text="EN 16931 VAT category of this line (S, Z, E, AE, K, G, O); omitted or "
        "null: the invoice's treatment, decided at issue. AE and K need the customer's VAT "
        "id, every category but O the seller's, and O can't share an invoice with others.",
    )
    vat_rate = DecimalNumberField(
        required=False,
        allow_null=True,
        min_value=Decimal(0),
        max_value=tax.MAX_VAT_RATE,
        decimal_places=tax.VAT_RATE_DECIMAL_PLACES,
        help_text="The line's VAT rate in percent: above 0 for S, 0 (or omitted) for the "
        "others; only with vat_category.",
    )

    def validate(self, attrs: dict) -> dict:
        # Checked here too: under PATCH the REST framework skips missing
        # required fields of nested items.
        missing = [name for name in ("description", "price") if name not in attrs]
        if missing:
            raise serializers.ValidationError(
                {name: ["This field is required."] for name in missing}
            )
        attrs.setdefault("quantity", Decimal(1))
        if attrs["quantity"] * attrs["price"] > MAX_AMOUNT:
            raise serializers.ValidationError(
                {"price": [f"quantity x price must be at most {MAX_AMOUNT}"]}
            )
        return attrs


def _amount_field(**kwargs) -> DecimalNumberField:
    kwargs.setdefault(
        "help_text", "Net amount of the invoice's single line (or the sum of `line_items`)."
    )
    return DecimalNumberField(
        min_value=Decimal(0),
        max_value=MAX_AMOUNT,
        decimal_places=AMOUNT_DECIMAL_PLACES,
        **kwargs,
    )


class _InvoiceWriteSerializer(StrictSerializer):
    """What create and update share: the lines, and checks that need the customer."""

    def _api_key(self) -> ApiKey | None:
        return self.context.get("api_key")

    def _check_currency(self, attrs: dict, account: Account, errors: dict) -> None:
        currency = attrs.get("currency")
        if currency is not None and currency != account.currency:
            # An invoice is billed in its customer's currency until it is issued
            # (services._apply_live_terms); another currency would not stick.
            errors["currency"] = [f"must be the customer's currency, {account.currency}"]

    def _check_lines(self, attrs: dict, account: Account, errors: dict) -> None:
        currency = account.currency
        places = minor_units(currency)
        amount = attrs.get("amount")
        if amount is not None and amount != quantize(amount, currency):
            errors["amount"] = [f"must have at most {places} decimal places in {currency}"]
            return
        lines = attrs.get("line_items")
        if lines is not None and amount is not None:
            lines_total = sum(
                (line_cost(line["quantity"], line["price"], currency) for line in lines),
                Decimal(0),
            )
            if lines_total != amount:
                errors["amount"] = [
                    f"must equal the sum of line_items ({lines_total}) when both are given"
                ]

    def new_lines(self) -> list[services.NewLine] | None:
        """The lines the request asks for: `line_items`, or one line of `amount`;
        None when it names neither (the lines stay as they are)."""
        attrs = self.validated_data
        if attrs.get("line_items") is not None:
            return [
                services.NewLine(
                    name=line["description"],
                    description=line["description"],
                    quantity=line["quantity"],
                    unit_price=line["price"],
                    vat_category=line.get("vat_category"),
                    vat_rate=line.get("vat_rate"),
                )
                for line in attrs["line_items"]
            ]
        if attrs.get("amount") is not None:
            description = attrs.get("description") or DEFAULT_LINE_DESCRIPTION
            return [
                services.NewLine(
                    name=description, description=description, unit_price=attrs["amount"]
                )
            ]
        return None


class InvoiceCreateSerializer(_InvoiceWriteSerializer):
    customer_id = StrictIntegerField(min_value=1, help_text="The customer (account) id.")
    amount = _amount_field(required=False)
    date = StrictDateField(
        required=False,
        help_text="Issue date; also picks the billed month. Required unless `draft`. "
        "Not in the future, and not before the billed month or the invoice's creation day.",
    )
    due_date = StrictDateField(
        required=False,
        help_text=f"Due date, on or after `date` and at most {services.MAX_DUE_DAYS} days "
        "later. Required unless `draft`.",
    )
    currency = serializers.CharField(
        required=False, min_length=3, max_length=3, help_text="Must be the customer's currency."
    )
    description = serializers.CharField(
        required=False, max_length=255, help_text="Text of the single line made from `amount`."
    )
    # max_length is the ListSerializer's (many=True), which the stubs do not know.
    line_items = LineItemInputSerializer(  # type: ignore[call-arg]
        many=True, required=False, allow_empty=False, max_length=services.MAX_LINE_ITEMS
    )
    draft = StrictBooleanField(
        required=False, default=False, help_text="Create an open (editable) invoice."
    )

    def validate(self, attrs: dict) -> dict:
        errors: dict[str, list[str]] = {}
        draft = attrs.get("draft", False)
        if not draft:
            for name in ("date", "due_date"):
                if name not in attrs:
                    errors[name] = ["This field is required."]
            if "amount" not in attrs and "line_items" not in attrs:
                errors["amount"] = ["This field is required (or give line_items)."]
        elif "due_date" in attrs:
            errors["due_date"] = [
                "not allowed for a draft; give it when issuing (POST /v1/invoices/{id}/issue)"
            ]
        account = account_visible_to(self._api_key()).filter(pk=attrs["customer_id"]).first()
        if account is None:
            errors["customer_id"] = ["does not exist"]
        else:
            self._check_currency(attrs, account, errors)
            self._check_lines(attrs, account, errors)
        if errors:
            raise serializers.ValidationError(errors)
        attrs["account"] = account
        return attrs


class InvoiceUpdateSerializer(_InvoiceWriteSerializer):
    """PUT replaces the draft's month and lines; PATCH changes what it is given."""

    # What a client read (GET) may be sent back unchanged.
    tolerated_fields = frozenset(
        {
            "id",
            "number",
            "period",
            "subtotal",
            "tax",
            "total",
            "status",
            "amount_paid",
            "amount_credited",
            "credit_applied",
            "amount_due",
            "customer",
            "payment",
            "created_at",
            "updated_at",
            "due_date",
        }
    )

    customer_id = StrictIntegerField(required=False, help_text="Cannot change; checked if sent.")
    amount = _amount_field(required=False)
    date = StrictDateField(required=False, help_text="Picks the billed month.")
    currency = serializers.CharField(required=False, min_length=3, max_length=3)
    description = serializers.CharField(required=False, max_length=255)
    # max_length is the ListSerializer's (many=True), which the stubs do not know.
    line_items = LineItemInputSerializer(  # type: ignore[call-arg]
        many=True, required=False, allow_empty=True, max_length=services.MAX_LINE_ITEMS
    )

    def validate(self, attrs: dict) -> dict:
        invoice = cast(Invoice, self.instance)
        errors: dict[str, list[str]] = {}
        if not self.partial:
            if "date" not in attrs:
                errors["date"] = ["This field is required."]
            if "amount" not in attrs and "line_items" not in attrs:
                errors["amount"] = ["This field is required (or give line_items)."]
        if "customer_id" in attrs and attrs["customer_id"] != invoice.account_id:
            errors["customer_id"] = ["cannot be changed; create a new invoice for that customer"]
        if self.initial_data.get("due_date") is not None:
            errors["due_date"] = [
                "a draft has no due date yet; give it when issuing (POST /v1/invoices/{id}/issue)"
            ]
        self._check_currency(attrs, invoice.account, errors)
        self._check_lines(attrs, invoice.account, errors)
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class InvoiceReplaceSerializer(InvoiceUpdateSerializer):
    """A PUT body: `date`, and `amount` or `line_items` (or both when they agree)."""

    date = StrictDateField(help_text="Picks the billed month. Required.")
    amount = _amount_field(
        required=False, help_text="The single line's net amount; required unless line_items."
    )


class InvoiceIssueSerializer(StrictSerializer):
    date = StrictDateField(
        required=False,
        help_text="Issue date (default: today). Not in the future, and not before the billed "
        "month or the invoice's creation day, whichever is earlier.",
    )
    due_date = StrictDateField(
        required=False,
        help_text="Due date (default: from the customer's payment terms), on or after the "
        f"issue date and at most {services.MAX_DUE_DAYS} days later.",
    )


class InvoiceCancelSerializer(StrictSerializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=1000)


class InvoiceMarkPaidSerializer(StrictSerializer):
    method = serializers.ChoiceField(
        choices=PaymentTransaction.Method.choices,
        required=False,
        default=PaymentTransaction.Method.BANK_TRANSFER,
    )
    reference = serializers.CharField(required=False, allow_blank=True, max_length=255)


class CreditNoteLineInputSerializer(StrictSerializer):
    line_item_id = StrictIntegerField(min_value=1, help_text="A line of the invoice.")
    quantity = DecimalNumberField(
        min_value=Decimal(0),
        min_exclusive=True,
        max_value=services.MAX_QUANTITY,
        decimal_places=QUANTITY_DECIMAL_PLACES,
        help_text="How much of the line's quantity to credit.",
    )


class CreditNoteCreateSerializer(StrictSerializer):
    reason = serializers.CharField(max_length=1000, help_text="Why the invoice is corrected.")
    amount = DecimalNumberField(
        required=False,
        min_value=Decimal(0),
        min_exclusive=True,
        max_value=MAX_AMOUNT,
        decimal_places=AMOUNT_DECIMAL_PLACES,
        help_text="Net amount to credit (VAT at the invoice's rate is added). Give this or "
        "`lines`.",
    )
    # max_length is the ListSerializer's (many=True), which the stubs do not know.
    lines = CreditNoteLineInputSerializer(  # type: ignore[call-arg]
        many=True, required=False, allow_empty=False, max_length=services.MAX_LINE_ITEMS
    )
    refund = StrictBooleanField(
        required=False,
        default=False,
        help_text="Refund what the credit takes out of a card payment through the gateway "
        "(else it goes to the customer's credit balance).",
    )

    def validate(self, attrs: dict) -> dict:
        if ("amount" in attrs) == ("lines" in attrs):
            raise serializers.ValidationError({"amount": ["give either amount or lines"]})
        return attrs

    def credit_lines(self) -> list[services.CreditLine] | None:
        lines = self.validated_data.get("lines")
        if lines is None:
            return None
        return [services.CreditLine(line["line_item_id"], line["quantity"]) for line in lines]


class PaymentCreateSerializer(StrictSerializer):
    amount = DecimalNumberField(
        min_value=Decimal(0),
        min_exclusive=True,
        max_value=MAX_AMOUNT,
        decimal_places=AMOUNT_DECIMAL_PLACES,
        help_text="Amount received; above what is due, the excess goes to the customer's "
        "credit balance.",
    )
    date = StrictDateField(help_text="The day the money was received (not in the future).")
    method = serializers.ChoiceField(choices=list(services.RECORDED_PAYMENT_METHODS))
    reference = serializers.CharField(required=False, allow_blank=True, max_length=255)
