"""Months: the billing period of every invoice, usage report and billing run.

A month is represented by its first day (`datetime.date`). Parsing accepts
exactly `YYYY-MM` with ASCII digits, year 1..9999, month 01..12; everything
else is a ValueError whose message can be shown to a client.
"""

from __future__ import annotations

import argparse
import calendar
import datetime as dt
import re

from dateutil.relativedelta import relativedelta

MONTH_RE = re.compile(r"\A([0-9]{4})-([0-9]{2})\Z")
FIRST_BILLABLE_MONTH = dt.date(2000, 1, 1)


def parse_month(value: object) -> dt.date:
    """`"2026-11"` -> 2026-11-01; ValueError for anything else (`"2026-13"`, `"２０２６-01"`)."""
    if not isinstance(value, str):
        raise ValueError("must be a month as YYYY-MM")
    match = MONTH_RE.match(value.strip())
    if match is None:
        raise ValueError("must be a month as YYYY-MM")
    year, month = int(match.group(1)), int(match.group(2))
    if year < 1 or not 1 <= month <= 12:
        raise ValueError("must be a month as YYYY-MM")
    return dt.date(year, month, 1)


def month_start(day: dt.date) -> dt.date:
    """The first day of the month `day` falls in."""
    return day.replace(day=1)


def add_months(day: dt.date, months: int) -> dt.date:
    """The first day of the month `months` after (or before, if negative) `day`'s month."""
    return month_start(day) + relativedelta(months=months)


def previous_month(day: dt.date) -> dt.date:
    return add_months(day, -1)


def month_end(day: dt.date) -> dt.date:
    """The last day of the month `day` falls in."""
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def days_in_month(day: dt.date) -> int:
    return calendar.monthrange(day.year, day.month)[1]


def month_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[first instant, first instant of the next month) of `day`'s month, in UTC.

    December 9999 ends at the largest representable instant instead of overflowing.
    """
    start = dt.datetime(day.year, day.month, 1, tzinfo=dt.UTC)
    if (day.year, day.month) == (9999, 12):
        return start, dt.datetime.max.replace(tzinfo=dt.UTC)
    return start, start + relativedelta(months=1)


def format_month(day: dt.date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def month_argument(value: str) -> dt.date:
    """`parse_month` as an argparse `type=`: a bad --month is a usage error naming the option."""
    try:
        return parse_month(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc}, got {value!r}") from None
