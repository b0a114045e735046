"""Totals for paginated lists that stay cheap on tables of millions of rows.

A list's total (3scale's `total_entries`, /v1's `X-Total-Count`) is exact up to
EXACT_COUNT_LIMIT rows, counted with a capped query that reads at most that
many index entries. Past that, an exact COUNT(*) of a million invoices costs
50-80 ms, more than everything else the page does together; it is then shared
for COUNT_CACHE_SECONDS between the requests a process serves, so a total over
ten thousand may lag the newest invoices by that long.
"""

from __future__ import annotations

import hashlib

from django.core.cache import cache
from django.db.models import QuerySet

EXACT_COUNT_LIMIT = 10_000
COUNT_CACHE_SECONDS = 2


def list_total(qs: QuerySet) -> int:
    unordered = qs.order_by()
    capped = unordered[: EXACT_COUNT_LIMIT + 1].count()
    if capped <= EXACT_COUNT_LIMIT:
        return capped
    sql, params = unordered.query.sql_with_params()
    key = "list-total:" + hashlib.sha1(f"{qs.db}|{sql}|{params!r}".encode()).hexdigest()
    total = cache.get(key)
    if total is None:
        total = unordered.count()
        cache.set(key, total, COUNT_CACHE_SECONDS)
    return total
