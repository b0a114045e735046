"""Reads of usage: the usage report of seed 000, raw or grouped."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, QuerySet, Sum
from django.db.models.functions import TruncDate

from usage.models import UsageRecord

GROUP_BY_FIELDS: dict[str, str] = {
    "service": "service",
    "region": "region",
    "resource": "resource_id",
    "day": "day",
}
MAX_REPORT_DAYS = 366


@dataclass(frozen=True)
class UsageReportQuery:
    """A validated report request; dates are inclusive and UTC."""

    start_date: dt.date
    end_date: dt.date
    region: str | None = None
    service: str | None = None
    account_id: int | None = None
    resource_id: str | None = None
    group_by: str | None = None

    @property
    def filters(self) -> dict[str, str]:
        return {
            name: value
            for name, value in (("region", self.region), ("service", self.service))
            if value is not None
        }


def usage_report_queryset(
    query: UsageReportQuery, *, account_ids: list[int] | None = None
) -> QuerySet[UsageRecord]:
    """The records a report covers. `account_ids` limits them (an account-limited key)."""
    start = dt.datetime.combine(query.start_date, dt.time.min, tzinfo=dt.UTC)
    end = dt.datetime.combine(query.end_date + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)
    qs = UsageRecord.objects.filter(start_time__gte=start, start_time__lt=end)
    if account_ids is not None:
        qs = qs.filter(account_id__in=account_ids)
    if query.account_id is not None:
        qs = qs.filter(account_id=query.account_id)
    if query.region is not None:
        qs = qs.filter(region=query.region)
    if query.service is not None:
        qs = qs.filter(service=query.service)
    if query.resource_id is not None:
        qs = qs.filter(resource_id=query.resource_id)
    return qs


def usage_report_total(qs: QuerySet[UsageRecord]) -> Decimal:
    """Total cost over the whole report range, whatever page is shown."""
    return qs.order_by().aggregate(total=Sum("cost"))["total"] or Decimal("0")


def usage_report_rows(qs: QuerySet[UsageRecord], *, group_by: str | None) -> QuerySet:
    """Raw records (oldest first) or one row per group, ordered by the key, with
    `records`, `seconds` (summed duration) and `amount` (summed cost)."""
    if group_by is None:
        return qs.order_by("start_time", "id").values(
            "client_id",
            "account_id",
            "resource_id",
            "resource_name",
            "service",
            "region",
            "start_time",
            "end_time",
            "duration",
            "cost",
            "metric",
            "quantity",
        )
    key = GROUP_BY_FIELDS[group_by]
    if key == "day":
        qs = qs.annotate(day=TruncDate("start_time"))
    return (
        qs.order_by()
        .values(key)
        .annotate(records=Count("id"), seconds=Sum("duration"), amount=Sum("cost"))
        .order_by(key)
    )
