"""JSON for the /v1 API with Decimal money: parsed without float, rendered as number literals.

The standard library can read numbers as Decimal (`parse_float=Decimal`) but
can only write a Decimal as a string or through float, which turns 0.1 + 0.2
into 0.30000000000000004. `dumps` below writes a Decimal as the JSON number
literal of its exact value (`110.00`), so money leaves the API exactly as it
is stored.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import orjson
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder as DRFEncoder

_fallback = DRFEncoder()


def decimal_literal(value: Decimal) -> str:
    if not value.is_finite():
        raise ValueError(f"{value} cannot be written as a JSON number")
    # Fixed-point notation: never an exponent ("1E+2"), never float rounding.
    text = format(value, "f")
    return "0" if text in ("-0", "") else text


def _encode(value: Any) -> Iterator[str]:
    if value is None:
        yield "null"
    elif value is True:
        yield "true"
    elif value is False:
        yield "false"
    elif isinstance(value, str):
        yield json.dumps(str(value), ensure_ascii=False)
    elif isinstance(value, Decimal):
        yield decimal_literal(value)
    elif isinstance(value, int):
        yield int.__repr__(value)
    elif isinstance(value, float):
        yield json.dumps(value, allow_nan=False)
    elif isinstance(value, dict):
        yield "{"
        for index, (key, item) in enumerate(value.items()):
            if index:
                yield ","
            yield json.dumps(str(key), ensure_ascii=False)
            yield ":"
            yield from _encode(item)
        yield "}"
    elif isinstance(value, (list, tuple)):
        yield "["
        for index, item in enumerate(value):
            if index:
                yield ","
            yield from _encode(item)
        yield "]"
    else:
        # Dates, UUIDs, lazy translations, querysets...: DRF's own conversions.
        yield from _encode(_fallback.default(value))


def dumps(value: Any) -> str:
    """orjson writes the document, each Decimal inserted as its exact digits;
    whatever orjson refuses (a non-text key, an integer beyond 64 bits, ...)
    goes through the plain writer, which gives the same bytes or the same error."""
    try:
        return orjson.dumps(
            value, default=_orjson_default, option=orjson.OPT_PASSTHROUGH_DATETIME
        ).decode()
    except orjson.JSONEncodeError:
        return "".join(_encode(value))


def _orjson_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return orjson.Fragment(decimal_literal(value))
    # Dates, UUIDs, lazy translations...: DRF's own conversions, as the plain writer does.
    return _fallback.default(value)


def _decimal_constant(name: str) -> Decimal:
    # NaN and Infinity become non-finite Decimals, which every number field
    # refuses with a message naming the field (rather than a bare parse error).
    return Decimal(name)


def loads(text: str | bytes) -> Any:
    return json.loads(text, parse_float=Decimal, parse_constant=_decimal_constant)


class DecimalJSONRenderer(JSONRenderer):
    """application/json; Decimal values are written as exact number literals."""

    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        if data is None:
            return b""
        return dumps(data).encode("utf-8")


class DecimalJSONParser(JSONParser):
    """application/json; numbers with a fraction or exponent are read as Decimal, never float."""

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", "utf-8")
        try:
            raw = stream.read() if stream is not None else b""
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            raise ParseError(f"The request body is not valid {encoding}.") from None
        if not text.strip():
            return {}
        try:
            return loads(text)
        except RecursionError:
            raise ParseError("Malformed JSON: nested too deeply.") from None
        except ValueError as exc:
            raise ParseError(f"Malformed JSON: {exc}") from None
