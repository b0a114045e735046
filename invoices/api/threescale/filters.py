"""3scale's invoice search: `state`, `month`, and the undocumented `number`, `year`,
`month_number` and `buyer_query`.

A filter value that cannot match anything (an invalid month, an unknown
state) gives an empty list rather than an error, as 3scale does.
"""

from __future__ import annotations

import re

from django.db.models import QuerySet
from django.http import QueryDict

from billing.api import parsing
from billing.api.threescale.params import list_values, parse_month
from invoices.models import Invoice

_NUMBER_RE = re.compile(r"^[0-9*-]{1,20}$")


def invoice_search(qs: QuerySet[Invoice], query: QueryDict) -> QuerySet[Invoice]:
    states = list_values(query, "state")
    if states:
        # Only real states reach the database (an unknown one matches nothing anyway,
        # and one with a NUL character would make PostgreSQL raise).
        qs = qs.filter(state__in=[state for state in states if state in Invoice.State.values])

    month = (query.get("month") or "").strip()
    if month:
        first_day = parse_month(month)
        qs = qs.none() if first_day is None else qs.filter(period=first_day)

    year = (query.get("year") or "").strip()
    if year:
        # Four ASCII digits, 0001..9999 (`²²²²` and `0000` match nothing, and fail nothing).
        number = _or_none(parsing.parse_year, year) if len(year) == 4 else None
        qs = qs.none() if number is None else qs.filter(period__year=number)

    month_number = (query.get("month_number") or "").strip()
    if month_number:
        number = _or_none(parsing.parse_month_number, month_number)
        qs = qs.none() if number is None else qs.filter(period__month=number)

    friendly_id = (query.get("number") or "").strip()
    if friendly_id:
        if not _NUMBER_RE.match(friendly_id):
            qs = qs.none()
        elif "*" in friendly_id:
            pattern = "^" + re.escape(friendly_id).replace(r"\*", ".*") + "$"
            qs = qs.filter(friendly_id__regex=pattern)
        else:
            qs = qs.filter(friendly_id=friendly_id)

    buyer_query = (query.get("buyer_query") or "").strip()
    if buyer_query:
        # No stored name holds a NUL character, and PostgreSQL refuses one in a query.
        if "\x00" in buyer_query:
            qs = qs.none()
        else:
            qs = qs.filter(account__org_name__icontains=buyer_query[:255])
    return qs


def _or_none(parse, value: str) -> int | None:
    try:
        return parse(value)
    except parsing.Invalid:
        return None


def newest_first(qs: QuerySet[Invoice]) -> QuerySet[Invoice]:
    """3scale 2.16's order: newest first, ties broken by id (the invoice_newest_idx index)."""
    return qs.order_by("-created_at", "-id")
