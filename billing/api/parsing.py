"""Strict parsing of every API parameter and field: integers, decimals, dates, months, text.

Both APIs read client values through these functions (the 3scale parameters
in `billing.api.threescale.params`, the /v1 fields in `billing.api.fields`),
so one rule holds everywhere:

- numbers are ASCII digits only: no `²`, no Arabic-Indic `١٢`, no `1_000`,
  and their length is bounded before any conversion (no "exceeds the limit
  for integer string conversion");
- dates are `YYYY-MM-DD` and months `YYYY-MM`, years 1..9999, and nothing
  computed from them overflows;
- text may not hold a NUL character or a lone surrogate (`"\\ud800"` in a JSON
  string): PostgreSQL can store neither, and they would otherwise be a 500.

Each function raises `Invalid` with a short message for the client, never a
Python internal one; the caller names the field.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from billing.lib import money, months

MAX_ID = 2**63 - 1
# Longer than any amount or count either API takes; refused before conversion.
MAX_NUMBER_LENGTH = 64

_INT_RE = re.compile(r"\A[+-]?[0-9]+\Z")
_DECIMAL_RE = re.compile(r"\A[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,4})?\Z")
_DATE_RE = re.compile(r"\A([0-9]{4})-([0-9]{2})-([0-9]{2})\Z")
_BAD_TEXT_RE = re.compile("[\x00\ud800-\udfff]")


class Invalid(ValueError):
    """A client value that cannot be read; `message` says why, for the client."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def parse_int(value: Any, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """A JSON integer or a string of ASCII digits (optionally signed), within bounds."""
    if isinstance(value, bool):
        raise Invalid("must be an integer")
    if isinstance(value, int):
        number = value
    elif isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        if abs(value.adjusted()) > MAX_NUMBER_LENGTH:
            raise Invalid("must be an integer")
        number = int(value)
    elif isinstance(value, str):
        text = value.strip()
        if len(text) > MAX_NUMBER_LENGTH or not _INT_RE.match(text):
            raise Invalid("must be an integer")
        number = int(text)
    else:
        raise Invalid("must be an integer")
    if minimum is not None and number < minimum or maximum is not None and number > maximum:
        raise Invalid(_range_message(minimum, maximum))
    return number


def _range_message(minimum: int | None, maximum: int | None) -> str:
    if minimum is not None and maximum is not None:
        return f"must be an integer from {minimum} to {maximum}"
    if minimum is not None:
        return f"must be at least {minimum}"
    return f"must be at most {maximum}"


def parse_id(value: Any) -> int:
    """A row id: 1 .. 2**63-1."""
    return parse_int(value, minimum=1, maximum=MAX_ID)


def parse_decimal(value: Any) -> Decimal:
    """A finite number: a JSON number (read as Decimal), an int, or ASCII decimal text."""
    if isinstance(value, str):
        text = value.strip()
        if len(text) > MAX_NUMBER_LENGTH or not _DECIMAL_RE.match(text):
            raise Invalid("must be a number")
    try:
        return money.parse_decimal(value)
    except ValueError as exc:
        raise Invalid(str(exc)) from None


def parse_date(value: Any) -> dt.date:
    """`YYYY-MM-DD` (ASCII digits), a day that exists, year 1..9999."""
    if not isinstance(value, str):
        raise Invalid("must be a date as YYYY-MM-DD")
    match = _DATE_RE.match(value.strip())
    if match is None:
        raise Invalid("must be a date as YYYY-MM-DD")
    try:
        return dt.date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        raise Invalid(f"{value.strip()} is not a date that exists") from None


def parse_month(value: Any) -> dt.date:
    """`YYYY-MM` as the first day of that month (see billing.lib.months)."""
    try:
        return months.parse_month(value)
    except ValueError as exc:
        raise Invalid(str(exc)) from None


def parse_year(value: Any) -> int:
    """A calendar year, 1..9999, as four ASCII digits or a number."""
    if isinstance(value, str) and not re.fullmatch(r"[0-9]{1,4}", value.strip()):
        raise Invalid("must be a year from 1 to 9999")
    try:
        return parse_int(value, minimum=1, maximum=9999)
    except Invalid:
        raise Invalid("must be a year from 1 to 9999") from None


def parse_month_number(value: Any) -> int:
    try:
        return parse_int(value, minimum=1, maximum=12)
    except Invalid:
        raise Invalid("must be a month number from 1 to 12") from None


def text_problem(value: str) -> str | None:
    """Why `value` cannot be stored as text, or None when it can."""
    found = _BAD_TEXT_RE.search(value)
    if found is None:
        return None
    if found.group() == "\x00":
        return "contains a NUL character"
    return "contains an invalid character (a lone UTF-16 surrogate)"


def clean_text(value: str) -> str:
    """`value` itself, or Invalid when it holds a NUL character or a lone surrogate."""
    problem = text_problem(value)
    if problem is not None:
        raise Invalid(problem)
    return value


def bad_text(data: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every (field path, problem) of a parsed document whose text cannot be stored.

    Keys count too: `{"\\ud800": 1}` is as unstorable as the value.
    """
    stack: list[tuple[Any, str]] = [(data, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem is not None:
                yield (where or "non_field_errors"), problem
        elif isinstance(item, dict):
            for key, child in item.items():
                key_text = str(key)
                child_path = f"{where}.{key_text}" if where else key_text
                problem = text_problem(key_text)
                if problem is not None:
                    yield (where or "non_field_errors"), f"has a field name that {problem}"
                    continue
                stack.append((child, child_path))
        elif isinstance(item, list):
            for index, child in enumerate(item):
                stack.append((child, f"{where}[{index}]"))
