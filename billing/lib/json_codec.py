"""JSON with Decimal money: read without float, written as exact number literals.

The standard library can read numbers as Decimal (`parse_float=Decimal`) but
can only write a Decimal as a string or through float, which turns 0.1 + 0.2
into 0.30000000000000004. `dumps` below is the one JSON writer of both APIs:
it writes a Decimal as the JSON number literal of its exact value (`110.00`),
and a `JsonNumber` verbatim, so money leaves the API exactly as it is stored.

Each API chooses its dialect: how a Decimal is spelt (`decimal`, /v1 keeps
its places, 3scale normalizes them) and how other values (dates, times...)
become JSON (`default`).

`loads` reads a document with every fraction as Decimal and refuses one
nested deeper than `MAX_DEPTH`, so a hostile `[[[[...` is a clean error
instead of a RecursionError.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

import orjson
from rest_framework.utils.encoders import JSONEncoder as DRFEncoder

# Deeper than any document either API takes (an invoice with lines is 3 levels).
MAX_DEPTH = 32

_fallback = DRFEncoder()


class JsonNumber:
    """A number written verbatim into JSON (the digits of a Decimal)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JsonNumber) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return self.text


def decimal_literal(value: Decimal) -> str:
    """Fixed-point notation: never an exponent ("1E+2"), never float rounding."""
    if not value.is_finite():
        raise ValueError(f"{value} cannot be written as a JSON number")
    text = format(value, "f")
    return "0" if text in ("-0", "") else text


def drf_default(value: Any) -> Any:
    """Dates, UUIDs, lazy translations, querysets...: the REST framework's conversions."""
    return _fallback.default(value)


def dumps(
    value: Any,
    *,
    decimal: Callable[[Decimal], str] = decimal_literal,
    default: Callable[[Any], Any] = drf_default,
) -> str:
    """Compact JSON, key order kept, numbers exact.

    orjson writes the document, each Decimal and JsonNumber inserted as its
    own digits; whatever orjson refuses (a non-text key, an integer beyond 64
    bits, a lone surrogate, ...) goes to the plain writer, which gives the same
    bytes or the same error.
    """

    def orjson_default(item: Any) -> Any:
        if isinstance(item, JsonNumber):
            return orjson.Fragment(item.text)
        if isinstance(item, Decimal):
            return orjson.Fragment(decimal(item))
        return default(item)

    try:
        return orjson.dumps(
            value, default=orjson_default, option=orjson.OPT_PASSTHROUGH_DATETIME
        ).decode()
    except orjson.JSONEncodeError:
        return plain_dumps(value, decimal=decimal, default=default)


def plain_dumps(
    value: Any,
    *,
    decimal: Callable[[Decimal], str] = decimal_literal,
    default: Callable[[Any], Any] = drf_default,
) -> str:
    """The same document as `dumps`, written in Python (the reference for its output)."""
    out: list[str] = []
    _write(value, out, decimal, default)
    return "".join(out)


def _write(value: Any, out: list[str], decimal, default) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, JsonNumber):
        out.append(value.text)
    elif isinstance(value, Decimal):
        out.append(decimal(value))
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float):
        out.append(json.dumps(value, allow_nan=False))
    elif isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, dict):
        out.append("{")
        for index, (key, item) in enumerate(value.items()):
            if index:
                out.append(",")
            out.append(json.dumps(str(key), ensure_ascii=False))
            out.append(":")
            _write(item, out, decimal, default)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _write(item, out, decimal, default)
        out.append("]")
    else:
        _write(default(value), out, decimal, default)


class JSONTooDeep(ValueError):
    """The document nests arrays and objects deeper than MAX_DEPTH."""


def _decimal_constant(name: str) -> Decimal:
    # NaN and Infinity become non-finite Decimals, which every number field
    # refuses with a message naming the field (rather than a bare parse error).
    return Decimal(name)


# Python refuses to convert integers of more than 4,300 digits from text (with a
# message about sys.set_int_max_str_digits); long ones are read as Decimal instead,
# exactly, and the fields that take them refuse them by their own bounds.
_LONG_INTEGER_DIGITS = 64


def _integer(text: str) -> int | Decimal:
    return int(text) if len(text) <= _LONG_INTEGER_DIGITS else Decimal(text)


def loads(
    text: str | bytes,
    *,
    max_depth: int = MAX_DEPTH,
    parse_constant: Callable[[str], Any] = _decimal_constant,
) -> Any:
    """A JSON document, fractions as Decimal; ValueError (JSONTooDeep) when too deep.

    `parse_constant` turns NaN, Infinity and -Infinity into a value, or raises.
    """
    try:
        data = json.loads(
            text, parse_float=Decimal, parse_int=_integer, parse_constant=parse_constant
        )
    except RecursionError:
        raise JSONTooDeep(f"nested deeper than {max_depth} levels") from None
    if depth_exceeds(data, max_depth):
        raise JSONTooDeep(f"nested deeper than {max_depth} levels")
    return data


def depth_exceeds(data: Any, max_depth: int) -> bool:
    """Whether arrays and objects nest deeper than `max_depth` (checked without recursion)."""
    stack = [(data, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Iterable[Any] = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > max_depth:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False
