"""Page-number pagination with the metadata in headers, so a list body stays a bare array.

`?page=2&per_page=50` (3scale's parameter names; per_page 1..100, default 20).
The answer carries `X-Total-Count` and an RFC 8288 `Link` header with the
first, prev, next and last pages. A page past the end is an empty array,
not an error, so a client can stop when it sees one.
"""

from __future__ import annotations

import math
from typing import Any

from rest_framework.pagination import BasePagination
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from billing.lib.api_errors import ApiError
from billing.lib.counting import list_total

DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 100
MAX_PAGE = 1_000_000


def _positive_int(request, name: str, default: int, maximum: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    message = f"must be an integer from 1 to {maximum}"
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= maximum or not raw.strip().isdigit():
        raise ApiError(
            f"Invalid query parameter {name}: {message}.",
            code="validation_error",
            details={name: [message]},
        )
    return value


class LinkHeaderPagination(BasePagination):
    page_query_param = "page"
    page_size_query_param = "per_page"
    default_per_page = DEFAULT_PER_PAGE
    max_per_page = MAX_PER_PAGE

    def paginate_queryset(self, queryset, request, view=None) -> list[Any]:
        self.request = request
        self.page = _positive_int(request, self.page_query_param, 1, MAX_PAGE)
        self.per_page = _positive_int(
            request, self.page_size_query_param, self.default_per_page, self.max_per_page
        )
        self.count = list_total(queryset)
        offset = (self.page - 1) * self.per_page
        if offset >= self.count:
            return []
        return list(queryset[offset : offset + self.per_page])

    @property
    def last_page(self) -> int:
        return max(1, math.ceil(self.count / self.per_page))

    def _url(self, page: int) -> str:
        url = self.request.build_absolute_uri()
        url = replace_query_param(url, self.page_size_query_param, self.per_page)
        return replace_query_param(url, self.page_query_param, page)

    def link_header(self) -> str:
        links = [("first", 1)]
        if self.page > 1:
            links.append(("prev", min(self.page - 1, self.last_page)))
        if self.page < self.last_page:
            links.append(("next", self.page + 1))
        links.append(("last", self.last_page))
        return ", ".join(f'<{self._url(page)}>; rel="{rel}"' for rel, page in links)

    def get_paginated_response(self, data) -> Response:
        return Response(
            data, headers={"Link": self.link_header(), "X-Total-Count": str(self.count)}
        )

    def get_paginated_response_schema(self, schema: dict) -> dict:
        return schema

    def get_schema_operation_parameters(self, view) -> list[dict]:
        return [
            {
                "name": self.page_query_param,
                "in": "query",
                "required": False,
                "description": "Page number, from 1.",
                "schema": {"type": "integer", "minimum": 1, "default": 1},
            },
            {
                "name": self.page_size_query_param,
                "in": "query",
                "required": False,
                "description": f"Items per page, 1 to {self.max_per_page}.",
                "schema": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": self.max_per_page,
                    "default": self.default_per_page,
                },
            },
        ]
