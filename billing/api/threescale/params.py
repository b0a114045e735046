"""Reading request parameters the way 3scale (Rails) does.

Rails merges the query string and the body, and wraps the body's attributes
under the resource name, so a client may send `period`, `invoice[period]`
(form) or `{"invoice": {"period": ...}}` (JSON or XML). Body values win over
query values. Anything not asked for is ignored, as Rails' strong parameters do.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

from django.http import QueryDict

from billing.api.threescale.errors import Unprocessable
from billing.lib.money import parse_decimal

MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")
MAX_ID = 2**63 - 1
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
    """A scalar as text; None stays None. Objects and lists are not text."""
    if value is None:
        return None
    if isinstance(value, bool) or isinstance(value, (dict, list)):
        raise Unprocessable.on(field, "is invalid")
    value = str(value)
    if "\x00" in value:
        # PostgreSQL cannot store a NUL character in text: refuse it here, not with a 500.
        raise Unprocessable.on(field, "contains a NUL character")
    return value


def decimal(value: Any, field: str) -> Decimal:
    if isinstance(value, str):
        value = value.strip()
    try:
        return parse_decimal(value)
    except ValueError:
        raise Unprocessable.on(field, "is not a number") from None


def optional_id(value: Any, field: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise Unprocessable.on(field, "is not a number")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        number = int(value.strip())
    else:
        raise Unprocessable.on(field, "is not a number")
    if not 0 < number <= MAX_ID:
        raise Unprocessable.on(field, "is out of range")
    return number


def parse_month(value: Any) -> dt.date | None:
    """`YYYY-MM` as the first day of that month; None when it is not one."""
    if not isinstance(value, str):
        return None
    match = MONTH_RE.match(value.strip())
    if match is None:
        return None
    year, month = int(match.group(1)), int(match.group(2))
    if year < 1 or not 1 <= month <= 12:
        return None
    return dt.date(year, month, 1)


def path_id(raw: Any) -> int | None:
    """A path id as an int; None for anything that cannot be a row id (the caller 404s)."""
    raw = str(raw)
    if not raw.isascii() or not raw.isdigit():
        return None
    number = int(raw)
    return number if 0 < number <= MAX_ID else None


def list_values(query: QueryDict, name: str) -> list[str]:
    """`state=a,b`, `state=a&state=b` and `state[]=a` all give ["a", "b"]; blanks are dropped."""
    values: list[str] = []
    for raw in query.getlist(name) + query.getlist(f"{name}[]"):
        for part in raw.split(","):
            part = part.strip()
            if part and part not in values:
                values.append(part)
    return values
