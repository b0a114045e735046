"""Strict serializer fields for /v1, built on `billing.api.parsing`: a number is a number,
a date a real date.

The REST framework's own fields are lenient in ways that hide client bugs
(`true` is not a valid integer here, `"2026-02-30"` is not a date, a money
amount never goes through float). Each field reports what is wrong, and the
/v1 error handler names the field.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from billing.api import parsing

_DATE_RE = re.compile(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
MIN_DATE = dt.date(2000, 1, 1)
MAX_DATE = dt.date(2999, 12, 31)


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer (not a boolean, a string or a number with a fraction)."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (int, Decimal)):
            self.fail("invalid")
        try:
            number = parsing.parse_int(data)
        except parsing.Invalid:
            self.fail("invalid")
        return super().to_internal_value(number)


class StrictBooleanField(serializers.BooleanField):
    """`true` or `false`, nothing else."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


@extend_schema_field(OpenApiTypes.NUMBER)
class DecimalNumberField(serializers.Field):
    """A finite decimal number, bounded, with at most `decimal_places` places; kept as Decimal.

    Accepts a JSON number (parsed as Decimal) or a numeric string; renders as
    a JSON number.
    """

    default_error_messages = {
        "invalid": "must be a number",
        "min_value": "must be at least {min_value}",
        "min_value_exclusive": "must be greater than {min_value}",
        "max_value": "must be at most {max_value}",
        "max_places": "must have at most {places} decimal places",
    }

    def __init__(
        self,
        *,
        min_value: Decimal | None = None,
        min_exclusive: bool = False,
        max_value: Decimal | None = None,
        decimal_places: int | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.min_value = min_value
        self.min_exclusive = min_exclusive
        self.max_value = max_value
        self.decimal_places = decimal_places

    def to_internal_value(self, data) -> Decimal:
        if not isinstance(data, (int, str, Decimal)) or isinstance(data, bool):
            self.fail("invalid")
        try:
            value = parsing.parse_decimal(data)
        except parsing.Invalid as exc:
            raise serializers.ValidationError(exc.message) from None
        if self.min_value is not None:
            if self.min_exclusive and value <= self.min_value:
                self.fail("min_value_exclusive", min_value=self.min_value)
            if not self.min_exclusive and value < self.min_value:
                self.fail("min_value", min_value=self.min_value)
        if self.max_value is not None and value > self.max_value:
            self.fail("max_value", max_value=self.max_value)
        if self.decimal_places is not None:
            exponent = value.as_tuple().exponent
            if isinstance(exponent, int) and exponent < -self.decimal_places:
                # 1.50 and 1.5 are the same amount; only real extra digits count.
                try:
                    rounded = value.quantize(Decimal(1).scaleb(-self.decimal_places))
                except InvalidOperation:  # too many digits to hold at all
                    rounded = None
                if rounded != value:
                    self.fail("max_places", places=self.decimal_places)
        return value

    def to_representation(self, value):
        return value


@extend_schema_field(OpenApiTypes.DATE)
class StrictDateField(serializers.Field):
    """An ISO 8601 calendar date, `YYYY-MM-DD`, that exists (no 2026-02-30)."""

    default_error_messages = {
        "invalid": "must be a date as YYYY-MM-DD",
        "impossible": "{value} is not a date that exists",
        "range": "must be between {min} and {max}",
    }

    def to_internal_value(self, data) -> dt.date:
        if not isinstance(data, str) or not _DATE_RE.match(data):
            self.fail("invalid")
        try:
            value = parsing.parse_date(data)
        except parsing.Invalid:
            self.fail("impossible", value=data)
        if not MIN_DATE <= value <= MAX_DATE:
            self.fail("range", min=MIN_DATE.isoformat(), max=MAX_DATE.isoformat())
        return value

    def to_representation(self, value):
        return value.isoformat() if value is not None else None


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know, so a misspelt field is an error rather than ignored.

    `tolerated_fields` are accepted and ignored (e.g. read-only fields of the
    representation, so a client can send back what it read).
    """

    tolerated_fields: frozenset[str] = frozenset()

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = set(data) - set(self.fields) - set(self.tolerated_fields)
            if unknown:
                raise serializers.ValidationError(
                    {name: ["unknown field"] for name in sorted(unknown)}
                )
        return super().to_internal_value(data)
