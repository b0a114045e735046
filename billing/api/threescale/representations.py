"""Representation helpers every 3scale resource shares: links and pagination."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from billing.api.pagination import PageRequest, page_rows
from billing.api.threescale.values import dumps
from billing.lib.counting import list_total


class Links:
    """Absolute hrefs on the host (and scheme) the request came in on."""

    def __init__(self, request) -> None:
        self.base = request.build_absolute_uri("/").rstrip("/")

    @functools.cached_property
    def json_base(self) -> str:
        """The base as the content of a JSON string (escaped once per request)."""
        return dumps(self.base)[1:-1]

    def href(self, path: str) -> str:
        return self.base + path

    def rel(self, rel: str, path: str) -> dict[str, Any]:
        return {"rel": rel, "href": self.href(path)}


@dataclass(frozen=True)
class Pagination:
    page: int
    per_page: int
    total_entries: int

    @property
    def total_pages(self) -> int:
        # will_paginate reports one page for an empty collection.
        if self.total_entries == 0:
            return 1
        return -(-self.total_entries // self.per_page)

    @property
    def has_many_pages(self) -> bool:
        return self.per_page < self.total_entries

    def json(self) -> dict[str, int]:
        return {
            "per_page": self.per_page,
            "total_entries": self.total_entries,
            "total_pages": self.total_pages,
            "current_page": self.page,
        }

    def xml_attributes(self) -> dict[str, str]:
        return {
            "total_pages": str(self.total_pages),
            "current_page": str(self.page),
            "per_page": str(self.per_page),
            "total_entries": str(self.total_entries),
        }


def paginate(
    qs: QuerySet, page: PageRequest, *, select: Callable[[QuerySet], QuerySet] | None = None
) -> tuple[list, Pagination]:
    """One page and its pagination; the COUNT is skipped when the page itself tells the total.

    `select` shapes the query that reads the page's rows (the columns it loads), not the count.
    """
    rows = page_rows(qs if select is None else select(qs), page)
    if 0 < len(rows) < page.per_page or (page.page == 1 and not rows):
        total = page.offset + len(rows)
    else:
        total = list_total(qs)
    return rows, Pagination(page=page.page, per_page=page.per_page, total_entries=total)
