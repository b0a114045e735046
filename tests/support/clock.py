"""Dates relative to the moment a test runs (never to the moment its module was imported)."""

from __future__ import annotations

import datetime as dt
import re

from django.utils import timezone

_RELATIVE = re.compile(r"^today(?P<days>[+-]\d+)?$")


def today() -> dt.date:
    """Today in UTC, the server's day (the local date may already be another one)."""
    return timezone.now().date()


def relative_dates(value):
    """`value` with every "today", "today+N" or "today-N" string replaced by that ISO date.

    Tables of test cases are built at import; they name dates this way so that each
    test computes them when it runs.
    """
    if isinstance(value, str):
        match = _RELATIVE.match(value)
        if match is None:
            return value
        return (today() + dt.timedelta(days=int(match["days"] or 0))).isoformat()
    if isinstance(value, dict):
        return {k: relative_dates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [relative_dates(v) for v in value]
    return value
