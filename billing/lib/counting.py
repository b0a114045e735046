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
from collections.abc import Callable, Sequence
from typing import Any

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
    return _shared_total(f"{qs.db}|{sql}|{params!r}", unordered.count)


def sql_total(
    cursor,
    from_where: str,
    params: Sequence[Any],
    *,
    capped: int | None = None,
    shared_first: bool = True,
) -> int:
    """`list_total` of the rows of a raw `FROM ... WHERE ...` clause (no ORDER BY).

    A total past EXACT_COUNT_LIMIT is looked up first (`shared_total`): a page of a
    large list then costs no count at all while the shared total is fresh. `capped`
    is the `capped_count_sql` count when the caller already ran it (in its own
    statement, saving a round trip). `shared_first=False` skips the first lookup (the
    caller made it and found nothing): the cache is then only asked past the limit.
    """
    if shared_first:
        total = shared_total(from_where, params)
        if total is not None:
            return total
    if capped is None:
        cursor.execute(capped_count_sql(from_where), params)
        capped = cursor.fetchone()[0]
    if capped <= EXACT_COUNT_LIMIT:
        return capped

    def count() -> int:
        cursor.execute(f"SELECT count(*) {from_where}", params)
        return cursor.fetchone()[0]

    return _shared_total(_sql_key_source(from_where, params), count)


def shared_total(from_where: str, params: Sequence[Any]) -> int | None:
    """The total past EXACT_COUNT_LIMIT shared a moment ago for this clause, if any."""
    return cache.get(_key(_sql_key_source(from_where, params)))


def capped_count_sql(from_where: str) -> str:
    """The rows of the clause counted up to EXACT_COUNT_LIMIT + 1 (no more are read)."""
    return f"SELECT count(*) FROM (SELECT 1 {from_where} LIMIT {EXACT_COUNT_LIMIT + 1}) capped"


def _sql_key_source(from_where: str, params: Sequence[Any]) -> str:
    return f"sql|{from_where}|{list(params)!r}"


def _key(source: str) -> str:
    return "list-total:" + hashlib.sha1(source.encode()).hexdigest()


def _shared_total(source: str, count: Callable[[], int]) -> int:
    key = _key(source)
    total = cache.get(key)
    if total is None:
        total = count()
        cache.set(key, total, COUNT_CACHE_SECONDS)
    return total
