"""Pricing services and rating an account's month from the database."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from billing.lib.money import line_cost
from tests.factories import AccountFactory
from tests.support.pricing import api_calls, metered, scale_plan
from usage.exceptions import PlanImmutable, PricingValidationError, SubscriptionConflict
from usage.models import Subscription, UsageRecord
from usage.rating import lines_total
from usage.selectors import rate_account_month
from usage.subscriptions import (
    metric_create,
    plan_create,
    plan_delete,
    plan_update,
    subscription_cancel,
    subscription_change_plan,
    subscription_create,
)

pytestmark = pytest.mark.django_db
D = Decimal
NOV = dt.date(2026, 11, 1)


def _summary(lines):
    return [(line.name, line_cost(line.quantity, line.unit_price, "USD")) for line in lines]


def test_the_reference_example_from_the_database():
    # given the scale plan from 11 Nov and 12,000 calls spread over the month
    account = AccountFactory()
    subscription = subscription_create(
        account=account, plan=scale_plan(), start_date=dt.date(2026, 11, 11)
    )
    metered(account, dt.date(2026, 11, 11), 5000)
    metered(account, dt.date(2026, 11, 30), 7000)
    metered(account, dt.date(2026, 11, 10), 999_999)  # before the subscription: not billed
    metered(account, dt.date(2026, 12, 1), 999_999)  # next month
    # when
    lines = rate_account_month(account, NOV)
    # then
    assert _summary(lines) == [
        ("Scale plan, 11-30 Nov 2026", D("66.67")),
        ("API calls, 0-1,000 x 0.00", D("0.00")),
        ("API calls, 1,001-10,000 x 0.01", D("90.00")),
        ("API calls, above 10,000 x 0.005", D("10.00")),
    ]
    assert [line.type for line in lines] == ["plan_fee", "usage", "usage", "usage"]
    assert lines[0].source == f"plan:{subscription.pk}:fee:2026-11-11-2026-11-30"
    assert lines_total(lines, "USD") == D("166.67")


def test_a_plan_change_mid_month_bills_each_plan_for_its_days_and_usage():
    account = AccountFactory()
    small = scale_plan("small", name="Small", amount=D("30.00"))
    big = scale_plan("big", name="Big", amount=D("90.00"), setup_fee=D("10.00"))
    first = subscription_create(account=account, plan=small, start_date=dt.date(2026, 10, 1))
    metered(account, dt.date(2026, 11, 5), 2000)
    metered(account, dt.date(2026, 11, 20), 3000)
    second = subscription_change_plan(subscription=first, plan=big, date=dt.date(2026, 11, 16))
    first.refresh_from_db()
    assert first.end_date == dt.date(2026, 11, 15)
    assert (second.start_date, second.end_date) == (dt.date(2026, 11, 16), None)

    lines = rate_account_month(account, NOV)
    assert _summary(lines) == [
        ("Small plan, 1-15 Nov 2026", D("15.00")),
        ("API calls, 0-1,000 x 0.00", D("0.00")),
        ("API calls, 1,001-10,000 x 0.01", D("10.00")),
        ("Big plan, 16-30 Nov 2026", D("45.00")),
        ("Big plan, setup fee", D("10.00")),
        ("API calls, 0-1,000 x 0.00", D("0.00")),
        ("API calls, 1,001-10,000 x 0.01", D("20.00")),
    ]
    assert len({line.source for line in lines}) == len(lines)


def test_cancel_ends_the_day_before_and_later_months_owe_nothing():
    account = AccountFactory()
    subscription = subscription_create(
        account=account, plan=scale_plan(), start_date=dt.date(2026, 10, 1)
    )
    subscription_cancel(subscription=subscription, date=dt.date(2026, 11, 7))
    subscription.refresh_from_db()
    assert subscription.end_date == dt.date(2026, 11, 6)
    assert _summary(rate_account_month(account, NOV)) == [("Scale plan, 1-6 Nov 2026", D("20.00"))]
    assert rate_account_month(account, dt.date(2026, 12, 1)) == []


def test_trial_days_owe_no_fee_and_the_setup_fee_is_billed_in_the_start_month():
    account = AccountFactory()
    plan = scale_plan(trial_days=14, setup_fee=D("25.00"), charges=[])
    subscription = subscription_create(account=account, plan=plan, start_date=dt.date(2026, 11, 10))
    assert subscription.trial_end_date == dt.date(2026, 11, 23)
    assert _summary(rate_account_month(account, NOV)) == [
        ("Scale plan, 24-30 Nov 2026", D("23.33")),
        ("Scale plan, setup fee", D("25.00")),
    ]


def test_aggregations_from_the_database():
    account = AccountFactory()
    for code, aggregation in (("peak", "max"), ("hits", "count"), ("seats", "unique_count")):
        metric_create(code=code, name=code.title(), aggregation=aggregation)
    plan = plan_create(
        code="agg",
        name="Agg",
        charges=[
            {"metric": code, "model": "per_unit", "unit_amount": D("1")}
            for code in ("peak", "hits", "seats")
        ],
    )
    subscription_create(account=account, plan=plan, start_date=NOV)
    for metric, quantity, resource in (
        ("peak", 3, ""), ("peak", 7, ""), ("hits", 1, ""), ("hits", 1, ""), ("hits", 1, ""),
        ("seats", 1, "ann"), ("seats", 1, "bob"), ("seats", 1, "ann"),
    ):  # fmt: skip
        metered(account, dt.date(2026, 11, 3), quantity, metric=metric, resource=resource)
    quantities = {
        line.source.split(":")[2]: line.quantity for line in rate_account_month(account, NOV)
    }
    assert quantities == {"peak": D(7), "hits": D(3), "seats": D(2)}


def test_one_live_subscription_per_account_is_a_database_constraint():
    account = AccountFactory()
    plan = scale_plan()
    subscription_create(account=account, plan=plan, start_date=NOV)
    with pytest.raises(SubscriptionConflict):
        subscription_create(account=account, plan=plan, start_date=dt.date(2027, 1, 1))
    with pytest.raises(IntegrityError), transaction.atomic():
        Subscription.objects.create(account=account, plan=plan, start_date=dt.date(2027, 1, 1))


def test_subscriptions_never_overlap_ended_ones():
    account = AccountFactory()
    plan = scale_plan()
    first = subscription_create(account=account, plan=plan, start_date=NOV)
    subscription_cancel(subscription=first, date=dt.date(2026, 12, 1))
    with pytest.raises(SubscriptionConflict):
        subscription_create(account=account, plan=plan, start_date=dt.date(2026, 11, 30))
    later = subscription_create(account=account, plan=plan, start_date=dt.date(2026, 12, 1))
    assert later.start_date == dt.date(2026, 12, 1)


def test_change_and_cancel_dates_are_checked():
    account = AccountFactory()
    plan, other = scale_plan(), scale_plan("other")
    subscription = subscription_create(account=account, plan=plan, start_date=NOV)
    with pytest.raises(PricingValidationError) as info:
        subscription_cancel(subscription=subscription, date=NOV)
    assert info.value.field == "date"
    with pytest.raises(PricingValidationError) as info:
        subscription_change_plan(subscription=subscription, plan=plan, date=dt.date(2026, 11, 5))
    assert info.value.field == "plan"
    subscription_cancel(subscription=subscription, date=dt.date(2026, 11, 10))
    with pytest.raises(SubscriptionConflict):
        subscription_change_plan(subscription=subscription, plan=other, date=dt.date(2026, 12, 5))


def test_a_plan_in_another_currency_is_refused():
    account = AccountFactory(currency="EUR")
    with pytest.raises(PricingValidationError) as info:
        subscription_create(account=account, plan=scale_plan(), start_date=NOV)
    assert info.value.field == "plan"


def test_a_plan_with_subscriptions_is_immutable():
    plan = scale_plan()
    assert plan_update(plan, amount=D("120.00")).amount == D("120.00")
    subscription_create(account=AccountFactory(), plan=plan, start_date=NOV)
    with pytest.raises(PlanImmutable):
        plan_update(plan, amount=D("1.00"))
    with pytest.raises(PlanImmutable):
        plan_delete(plan)
    plan.refresh_from_db()
    assert plan.amount == D("120.00")


@pytest.mark.parametrize(
    ("charge", "field"),
    [
        ({"metric": "nope", "model": "per_unit", "unit_amount": D(1)}, "charges[0].metric"),
        ({"metric": "api_calls", "model": "magic", "unit_amount": D(1)}, "charges[0].model"),
        ({"metric": "api_calls", "model": "per_unit"}, "charges[0].unit_amount"),
        ({"metric": "api_calls", "model": "package", "unit_amount": D(1)},
         "charges[0].package_size"),
        ({"metric": "api_calls", "model": "graduated"}, "charges[0].tiers"),
        ({"metric": "api_calls", "model": "volume", "tiers": [{"up_to": 5, "unit_amount": 1}]},
         "charges[0].tiers[0].up_to"),
        ({"metric": "api_calls", "model": "volume", "unit_amount": D(1),
          "tiers": [{"up_to": None, "unit_amount": 1}]}, "charges[0].unit_amount"),
        ({"metric": "api_calls", "model": "per_unit", "unit_amount": D("0.000000001")},
         "charges[0].unit_amount"),
    ],
)  # fmt: skip
def test_bad_charges_are_refused_naming_the_field_and_nothing_is_written(charge, field):
    api_calls()
    with pytest.raises(PricingValidationError) as info:
        plan_create(code="bad", name="Bad", charges=[charge])
    assert info.value.field == field
    from usage.models import Plan

    assert not Plan.objects.filter(code="bad").exists()


def test_a_metered_record_has_no_cost_and_a_priced_one_no_metric():
    account = AccountFactory()
    record = metered(account, NOV, 5)
    assert record.cost is None
    with pytest.raises(IntegrityError), transaction.atomic():
        UsageRecord.objects.filter(pk=record.pk).update(cost=D(1))


def test_many_accounts_are_rated_in_a_few_queries(django_assert_max_num_queries):
    from usage.selectors import rate_accounts_month

    # given ten accounts on the plan, half of them from mid-month, and one changing plan
    plan, big = scale_plan(), scale_plan("big", name="Big", amount=D("300.00"))
    accounts = [AccountFactory() for _ in range(10)]
    for index, account in enumerate(accounts):
        start = NOV if index % 2 else dt.date(2026, 11, 11)
        subscription = subscription_create(account=account, plan=plan, start_date=start)
        if index == 3:
            subscription_change_plan(
                subscription=subscription, plan=big, date=dt.date(2026, 11, 20)
            )
        metered(account, dt.date(2026, 11, 12), 1000 + index * 1000)
        metered(account, dt.date(2026, 11, 25), 500)
    unsubscribed = AccountFactory()
    # when
    with django_assert_max_num_queries(8):
        rated = rate_accounts_month([a.pk for a in accounts] + [unsubscribed.pk], NOV)
    # then each account's lines are those it gets alone
    assert unsubscribed.pk not in rated
    for account in accounts:
        assert rated[account.pk] == rate_account_month(account, NOV)
    # 19 days of Scale, 3,000 paying calls on it, 11 days of Big, 500 free calls on it
    assert lines_total(rated[accounts[3].pk], "USD") == D("63.33") + D("30.00") + D("110.00")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_subscribes_leave_one_live_subscription():
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    # given an account and a plan, committed
    account = AccountFactory()
    plan = scale_plan()
    barrier = threading.Barrier(4)

    def subscribe(index: int) -> str:
        try:
            barrier.wait(timeout=30)
            subscription_create(account=account, plan=plan, start_date=NOV + dt.timedelta(index))
            return "created"
        except SubscriptionConflict:
            return "conflict"
        finally:
            connection.close()

    # when four requests subscribe it at once
    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = sorted(pool.map(subscribe, range(4)))
    # then the account lock lets one through and the others see it
    assert outcomes == ["conflict", "conflict", "conflict", "created"]
    assert Subscription.objects.filter(account=account).count() == 1
