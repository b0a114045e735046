"""Serializers of the usage API: the parameters of the usage report.

A report request comes as query parameters (GET) or a JSON body (POST); the
view gathers either into one flat dict and this serializer decides what is
valid, so both ways answer the same 400 naming the same field.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from rest_framework import serializers

from billing.api.pagination import MAX_PAGE
from usage import selectors

DEFAULT_PER_PAGE = 100
MAX_PER_PAGE = 1000
# Keeps OFFSET within what every database accepts (a 64-bit integer).
MAX_ID = 2**63 - 1
TEXT_FILTER_MAX = 255
_DATE_RE = re.compile(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
# ASCII digits only: str.isdigit() also takes "²" and "٣", which int() refuses or misreads.
_INTEGER_RE = re.compile(r"\A[0-9]{1,19}\Z")


class ReportDateField(serializers.Field):
    """A calendar date as `YYYY-MM-DD` in ASCII digits, one that exists."""

    default_error_messages = {
        "required": "is required (YYYY-MM-DD)",
        "null": "is required (YYYY-MM-DD)",
        "invalid": "must be a date as YYYY-MM-DD",
        "impossible": "{value} is not a date that exists (YYYY-MM-DD)",
    }

    def to_internal_value(self, data: Any) -> dt.date:
        if data == "":
            self.fail("required")
        if not isinstance(data, str) or not _DATE_RE.match(data):
            self.fail("invalid")
        try:
            return dt.date.fromisoformat(data)
        except ValueError:
            self.fail("impossible", value=data)
            raise  # unreachable: fail() raises

    def to_representation(self, value: dt.date) -> str:
        return value.isoformat()


class PositiveIntegerField(serializers.Field):
    """A whole number from 1 to `max_value`: a JSON integer or a string of ASCII
    digits (a query parameter). Empty means not given."""

    default_error_messages = {
        "invalid": "must be a positive integer",
        "max_value": "must be at most {max_value}",
    }

    def __init__(self, *, max_value: int = MAX_ID, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)
        self.max_value = max_value

    def to_internal_value(self, data: Any) -> int | None:
        if data == "":
            return None
        if isinstance(data, bool):
            self.fail("invalid")
        if isinstance(data, int):
            number = data
        elif isinstance(data, str) and _INTEGER_RE.match(data):
            number = int(data)
        else:
            self.fail("invalid")
        if number < 1:
            self.fail("invalid")
        if number > self.max_value:
            self.fail("max_value", max_value=self.max_value)
        return number

    def to_representation(self, value: int) -> int:
        return value


class TextFilterField(serializers.CharField):
    """An exact-match filter: a string (or, with `allow_int`, an integer) of at
    most 255 characters. NUL and lone surrogates are refused by CharField's
    own validators, before they can reach the database driver."""

    default_error_messages = {"not_a_string": "must be a string"}

    def __init__(self, *, allow_int: bool = False, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_null", True)
        kwargs.setdefault("allow_blank", True)
        kwargs.setdefault("trim_whitespace", False)
        kwargs.setdefault("max_length", TEXT_FILTER_MAX)
        super().__init__(**kwargs)
        self.allow_int = allow_int

    def to_internal_value(self, data: Any) -> str:
        if self.allow_int and isinstance(data, int) and not isinstance(data, bool):
            if not 0 <= data <= MAX_ID:
                self.fail("not_a_string")
            data = str(data)
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)


class GroupByField(serializers.Field):
    """One grouping key: service, region, resource or day. Empty means raw records."""

    default_error_messages = {
        "invalid": f"must be one of {', '.join(selectors.GROUP_BY_FIELDS)} (one key, a string)"
    }

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str | None:
        if data == "":
            return None
        if not isinstance(data, str) or data not in selectors.GROUP_BY_FIELDS:
            self.fail("invalid")
        return data

    def to_representation(self, value: str) -> str:
        return value


class UsageReportParamsSerializer(serializers.Serializer):
    """The parameters of `/v1/usage/report`, flat: `region` and `service` are
    `filters.region` and `filters.service` of the request."""

    start_date = ReportDateField(help_text="Inclusive.")
    end_date = ReportDateField(help_text="Inclusive.")
    region = TextFilterField()
    service = TextFilterField()
    account_id = PositiveIntegerField()
    resource_id = TextFilterField(allow_int=True)
    group_by = GroupByField()
    page = PositiveIntegerField(max_value=MAX_PAGE)
    per_page = PositiveIntegerField(max_value=MAX_PER_PAGE)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start, end = attrs["start_date"], attrs["end_date"]
        if end < start:
            raise serializers.ValidationError({"end_date": ["must not be before start_date"]})
        if (end - start).days + 1 > selectors.MAX_REPORT_DAYS:
            raise serializers.ValidationError(
                {"end_date": [f"the range may cover at most {selectors.MAX_REPORT_DAYS} days"]}
            )
        for name in ("region", "service", "resource_id"):
            if attrs.get(name) == "":
                attrs[name] = None
        return attrs

    def query(self) -> selectors.UsageReportQuery:
        data = self.validated_data
        return selectors.UsageReportQuery(
            start_date=data["start_date"],
            end_date=data["end_date"],
            region=data.get("region"),
            service=data.get("service"),
            account_id=data.get("account_id"),
            resource_id=data.get("resource_id"),
            group_by=data.get("group_by"),
        )

    def paging(self) -> tuple[int, int]:
        data = self.validated_data
        return data.get("page") or 1, data.get("per_page") or DEFAULT_PER_PAGE
