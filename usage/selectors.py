"""Reads of usage: the usage report (pre-rated records), raw or grouped."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Max, Prefetch, QuerySet, Sum
from django.db.models.functions import TruncDate

from accounts.models import Account, ApiKey
from billing.lib import months
from usage import rating
from usage.models import Charge, Metric, Plan, Subscription, UsageRecord

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
    qs = UsageRecord.objects.filter(start_time__gte=start)
    # The day after end_date bounds the range; 9999-12-31 has none and needs no bound.
    if query.end_date < dt.date.max:
        end = dt.datetime.combine(query.end_date + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)
        qs = qs.filter(start_time__lt=end)
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


# --- pricing -----------------------------------------------------------------------


def metric_list() -> QuerySet[Metric]:
    return Metric.objects.all()


def plan_list() -> QuerySet[Plan]:
    return Plan.objects.prefetch_related(
        Prefetch("charges", queryset=Charge.objects.select_related("metric").order_by("id"))
    )


def subscription_list(api_key: ApiKey | None = None) -> QuerySet[Subscription]:
    """Subscriptions the key may see: all, or those of the account it is limited to."""
    qs = Subscription.objects.select_related("plan", "account").order_by("-start_date", "-id")
    if api_key is not None and api_key.account_id is not None:
        qs = qs.filter(account_id=api_key.account_id)
    return qs


def subscription_terms(subscription: Subscription) -> rating.SubscriptionTerms:
    """The pure view of a subscription and its plan that rating works on."""
    plan = subscription.plan
    charges = tuple(
        rating.ChargeTerms(
            metric_code=charge.metric.code,
            metric_name=charge.metric.name,
            unit=charge.metric.unit,
            aggregation=charge.metric.aggregation,
            model=rating.pricing_model(
                charge.model,
                unit_amount=charge.unit_amount,
                free_units=charge.free_units,
                package_size=charge.package_size,
                tiers=charge.tiers,
            ),
        )
        for charge in sorted(plan.charges.all(), key=lambda charge: charge.pk)
    )
    return rating.SubscriptionTerms(
        id=subscription.pk,
        plan_code=plan.code,
        plan_name=plan.name,
        currency=plan.currency,
        amount=plan.amount,
        setup_fee=plan.setup_fee,
        start_date=subscription.start_date,
        end_date=subscription.end_date,
        trial_end_date=subscription.trial_end_date,
        charges=charges,
    )


def metric_usage(
    account_id: int, metrics: dict[str, str], first: dt.date, last: dt.date
) -> dict[str, Decimal]:
    """Each metric's aggregated quantity over the account's records of days first..last (UTC).

    `metrics` maps each metric code to its aggregation. One query for all of them.
    """
    if not metrics:
        return {}
    return {
        row["metric"]: Decimal(row[_AGGREGATE_COLUMN[metrics[row["metric"]]]] or 0)
        for row in _metric_aggregates([account_id], list(metrics), first, last)
    }


def rate_account_month(account: Account | int, month: dt.date) -> list[rating.LineSpec]:
    """The plan lines an account owes for `month`: fees, setup fees and rated usage.

    Every subscription active on a day of the month contributes, in start
    order; its charges are rated on the records of its own active days. Seed
    000's pre-rated records are not included (the billing run bills them as
    before). Reads only; the same answer for the same data.
    """
    account_id = account if isinstance(account, int) else account.pk
    return rate_accounts_month([account_id], month).get(account_id, [])


_AGGREGATE_COLUMN = {"sum": "total", "max": "peak", "count": "records", "unique_count": "resources"}


def rate_accounts_month(
    account_ids: Iterable[int], month: dt.date
) -> dict[int, list[rating.LineSpec]]:
    """`rate_account_month` for many accounts at once, in a handful of queries.

    Accounts without a subscription in the month are absent. The usage is
    aggregated with one query per distinct range of active days (usually
    one: the whole month), grouped by account and metric.
    """
    month = months.month_start(month)
    ids = sorted(set(account_ids))
    subscriptions = list(
        Subscription.objects.filter(account_id__in=ids)
        .overlapping(month, months.month_end(month))
        .select_related("plan")
        .prefetch_related(
            Prefetch("plan__charges", queryset=Charge.objects.select_related("metric"))
        )
        .order_by("account_id", "start_date", "id")
    )
    rated: list[tuple[Subscription, rating.SubscriptionTerms, tuple[dt.date, dt.date]]] = []
    by_range: dict[tuple[dt.date, dt.date], tuple[set[int], dict[str, str]]] = {}
    for subscription in subscriptions:
        terms = subscription_terms(subscription)
        days = rating.active_days(terms.start_date, terms.end_date, month)
        if days is None:
            continue
        rated.append((subscription, terms, days))
        accounts, metrics = by_range.setdefault(days, (set(), {}))
        accounts.add(subscription.account_id)
        metrics.update({charge.metric_code: charge.aggregation for charge in terms.charges})

    usage: dict[tuple[int, tuple[dt.date, dt.date]], dict[str, Decimal]] = {}
    for days, (accounts, metrics) in by_range.items():
        if not metrics:
            continue
        for row in _metric_aggregates(sorted(accounts), list(metrics), *days):
            column = _AGGREGATE_COLUMN[metrics[row["metric"]]]
            usage.setdefault((row["account_id"], days), {})[row["metric"]] = Decimal(
                row[column] or 0
            )

    lines: dict[int, list[rating.LineSpec]] = {}
    for subscription, terms, days in rated:
        # Each subscription reads only its own metrics' aggregation: two subscriptions
        # on the same days are impossible (they never overlap).
        own = {
            charge.metric_code: usage.get((subscription.account_id, days), {}).get(
                charge.metric_code, Decimal(0)
            )
            for charge in terms.charges
        }
        lines.setdefault(subscription.account_id, []).extend(
            rating.rate_subscription_month(terms, month, own)
        )
    return lines


def _metric_aggregates(
    account_ids: list[int], metrics: list[str], first: dt.date, last: dt.date
) -> QuerySet:
    start = dt.datetime.combine(first, dt.time.min, tzinfo=dt.UTC)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)
    return (
        UsageRecord.objects.filter(
            account_id__in=account_ids,
            metric__in=metrics,
            start_time__gte=start,
            start_time__lt=end,
        )
        .order_by()
        .values("account_id", "metric")
        .annotate(
            total=Sum("quantity"),
            peak=Max("quantity"),
            records=Count("id"),
            resources=Count("resource_id", distinct=True),
        )
    )


def prerated_usage_lines(account_id: int, month: dt.date) -> list[rating.LineSpec]:
    """The pre-rated records of the month as the billing run bills them:
    one line per service and region, its unit price the sum of their costs."""
    start, end = months.month_bounds(months.month_start(month))
    rows = (
        UsageRecord.objects.filter(
            account_id=account_id,
            metric__isnull=True,
            start_time__gte=start,
            start_time__lt=end,
        )
        .order_by()
        .values("service", "region")
        .annotate(total=Sum("cost"), records=Count("id"))
        .order_by("service", "region")
    )
    return [
        rating.LineSpec(
            name=f"{row['service']} usage, {row['region']}"[:255],
            quantity=Decimal(1),
            unit_price=row["total"].quantize(Decimal(1).scaleb(-rating.PRICE_PLACES)),
            type=rating.TYPE_USAGE,
            source=f"usage:{row['service']}:{row['region']}",
            description=(
                f"{row['service']} in {row['region']}, {month:%B %Y}: "
                f"{row['records']} usage records"
            ),
        )
        for row in rows
    ]


def change_plan_preview(
    subscription: Subscription, plan: Plan, date: dt.date
) -> tuple[list[rating.LineSpec], list[rating.LineSpec]]:
    """The plan lines of `date`'s month as they stand, and as they would be after moving
    `subscription` to `plan` from `date` (usage so far). Saves nothing."""
    month = months.month_start(date)
    before = rate_account_month(subscription.account_id, month)
    others = [
        line
        for line in before
        if not line.source.startswith(
            (f"plan:{subscription.pk}:", f"setup:{subscription.pk}", f"charge:{subscription.pk}:")
        )
    ]
    old = subscription_terms(subscription)
    trial_end = old.trial_end_date if old.trial_end_date and old.trial_end_date >= date else None
    last_day = date - dt.timedelta(days=1)
    ended = dataclasses.replace(
        old,
        end_date=last_day,
        trial_end_date=min(old.trial_end_date, last_day) if old.trial_end_date else None,
    )
    proposed = Subscription(
        pk=0,
        account_id=subscription.account_id,
        plan=plan,
        start_date=date,
        end_date=subscription.end_date,
        trial_end_date=trial_end,
    )
    new = subscription_terms(proposed)
    after = list(others)
    for terms in (ended, new):
        days = rating.active_days(terms.start_date, terms.end_date, month)
        if days is None:
            continue
        metrics = {charge.metric_code: charge.aggregation for charge in terms.charges}
        usage = metric_usage(subscription.account_id, metrics, *days)
        after.extend(rating.rate_subscription_month(terms, month, usage))
    return before, after
