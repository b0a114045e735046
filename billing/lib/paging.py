"""A paginator for very large admin lists: no exact COUNT(*) over millions of rows.

On PostgreSQL an exact count of a million-row table reads the whole table or
index, on every page view. This paginator counts exactly only when the answer
is small: an unfiltered list takes the planner's row estimate of the table
(pg_class.reltuples), and a filtered one counts at most COUNT_CAP rows and,
past that, takes the planner's estimate for the query. Page links stay usable;
only the last page number is approximate on huge lists. Other databases (the
embedded SQLite set-up) count exactly.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.paginator import Paginator
from django.db import connections
from django.utils.functional import cached_property

COUNT_CAP = 10_000


def table_estimate(model, using: str = "default") -> int | None:
    """The planner's row estimate of a table, or None when it has never been analysed."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)",
            [model._meta.db_table],
        )
        row = cursor.fetchone()
    if row is None or row[0] is None or row[0] < 0:
        return None
    return int(row[0])


def query_estimate(queryset) -> int | None:
    """The planner's estimate of how many rows `queryset` returns (PostgreSQL only)."""
    if connections[queryset.db].vendor != "postgresql":
        return None
    plan = json.loads(queryset.order_by().explain(format="json"))
    return int(plan[0]["Plan"]["Plan Rows"])


class EstimatedCountPaginator(Paginator):
    """Counts exactly up to COUNT_CAP rows; estimates beyond that on PostgreSQL."""

    cap = COUNT_CAP

    @cached_property
    def count(self) -> int:
        queryset: Any = self.object_list  # a QuerySet, or a list in tests
        if not hasattr(queryset, "query") or connections[queryset.db].vendor != "postgresql":
            return super().count
        if not queryset.query.where:
            estimate = table_estimate(queryset.model, queryset.db)
            if estimate is not None and estimate > self.cap:
                return estimate
        capped = queryset.order_by()[: self.cap + 1].count()
        if capped <= self.cap:
            return capped
        return max(query_estimate(queryset) or 0, capped)
