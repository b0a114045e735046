"""Reading request parameters the way 3scale (Rails) does.

Rails merges the query string and the body, and wraps the body's attributes
under the resource name, so a client may send `period`, `invoice[period]`
(form) or `{"invoice": {"period": ...}}` (JSON or XML). Body values win over
query values. Anything not asked for is ignored, as Rails' strong parameters do.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.http import QueryDict

from billing.api import parsing
from billing.api.threescale.errors import Unprocessable

_MISSING = object()


def _lookup(source: Any, name: str, wrapper: str | None) -> Any:
    if isinstance(source, QueryDict):
        if name in source:
            return source.get(name)
        if wrapper and f"{wrapper}[{name}]" in source:
            return source.get(f"{wrapper}[{name}]")
        return _MISSING
    if isinstance(source, dict):
        if name in source:
            return source[name]
        nested = source.get(wrapper) if wrapper else None
        if isinstance(nested, dict) and name in nested:
            return nested[name]
        if wrapper and f"{wrapper}[{name}]" in source:
            return source[f"{wrapper}[{name}]"]
    return _MISSING


def param(request, name: str, *, wrapper: str | None = None, body: bool = True) -> Any:
    """The value of `name` (or `wrapper[name]`), body first, then query; None if absent."""
    if body:
        value = _lookup(request.data, name, wrapper)
        if value is not _MISSING:
            return value
    value = _lookup(request.query_params, name, wrapper)
    return None if value is _MISSING else value


def text(value: Any, field: str) -> str | None:
    """A scalar as text; None stays None. Objects and lists are not text, and
    text PostgreSQL cannot store (a NUL character, a lone surrogate) is refused."""
    if value is None:
        return None
    if isinstance(value, bool) or isinstance(value, (dict, list)):
        raise Unprocessable.on(field, "is invalid")
    try:
        return parsing.clean_text(str(value))
    except parsing.Invalid as exc:
        raise Unprocessable.on(field, exc.message) from None


def decimal(value: Any, field: str) -> Decimal:
    try:
        return parsing.parse_decimal(value)
    except parsing.Invalid:
        raise Unprocessable.on(field, "is not a number") from None


def optional_id(value: Any, field: str) -> int | None:
    if value is None or value == "":
        return None
    if not isinstance(value, (int, str)):
        raise Unprocessable.on(field, "is not a number")
    try:
        parsing.parse_int(value)
    except parsing.Invalid:
        raise Unprocessable.on(field, "is not a number") from None
    try:
        return parsing.parse_id(value)
    except parsing.Invalid:
        raise Unprocessable.on(field, "is out of range") from None


def parse_month(value: Any) -> dt.date | None:
    """`YYYY-MM` as the first day of that month; None when it is not one."""
    try:
        return parsing.parse_month(value)
    except parsing.Invalid:
        return None


def path_id(raw: Any) -> int | None:
    """A path id as an int; None for anything that cannot be a row id (the caller 404s)."""
    raw = str(raw)
    if raw != raw.strip():
        return None
    try:
        return parsing.parse_id(raw) if raw.isdigit() else None
    except parsing.Invalid:
        return None


def list_values(query: QueryDict, name: str) -> list[str]:
    """`state=a,b`, `state=a&state=b` and `state[]=a` all give ["a", "b"]; blanks are dropped."""
    values: list[str] = []
    for raw in query.getlist(name) + query.getlist(f"{name}[]"):
        for part in raw.split(","):
            part = part.strip()
            if part and part not in values:
                values.append(part)
    return values
