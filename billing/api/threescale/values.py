"""How 3scale writes values: numbers, dates, times and JSON.

Money stays Decimal up to the byte that goes on the wire: JSON numbers are
written from the Decimal's own digits by `billing.lib.json_codec`, never
through float, so a large or many-decimal amount arrives exactly as stored.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from billing.lib import json_codec
from billing.lib.json_codec import JsonNumber


def ruby_decimal(value: Decimal) -> str:
    """A Decimal as 3scale prints money and rates: `110.0`, `36.28`, `0.0`."""
    text = format(value.normalize(), "f")
    if "." not in text:
        text += ".0"
    return text


def plain_decimal(value: Decimal) -> str:
    """A quantity: `1`, `2.5` (3scale quantities are integers; ours may have decimals)."""
    return format(value.normalize(), "f")


def money(value: Decimal) -> JsonNumber:
    return JsonNumber(ruby_decimal(value))


def quantity(value: Decimal) -> JsonNumber:
    return JsonNumber(plain_decimal(value))


def iso_time(value: dt.datetime) -> str:
    """`2026-01-15T10:20:30Z`: UTC, no fractions (3scale's time_precision = 0)."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ruby_time(value: dt.datetime) -> str:
    """`2026-02-05 03:00:12 UTC`: how Ruby's Time#to_s prints in 3scale's invoice XML."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso_date(value: dt.date) -> str:
    return value.isoformat()


def _json_decimal(value: Decimal) -> str:
    if not value.is_finite():
        raise ValueError("cannot write a non-finite number to JSON")
    return plain_decimal(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return iso_time(value)
    if isinstance(value, dt.date):
        return iso_date(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


# How 3scale writes JSON: a bare Decimal as its plain digits, times without fractions.
JSON_DIALECT: dict[str, Any] = {"decimal": _json_decimal, "default": _json_default}


def dumps(value: Any) -> str:
    """Compact JSON in 3scale's dialect, through the one Decimal-exact writer."""
    return json_codec.dumps(value, **JSON_DIALECT)
