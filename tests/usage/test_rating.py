"""The rating engine: pricing models against brute-force oracles, proration, worked examples."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.lib import months
from billing.lib.money import line_cost, quantize
from usage.rating import (
    ChargeTerms,
    Graduated,
    Package,
    PerUnit,
    SubscriptionTerms,
    Tier,
    TierError,
    Volume,
    active_days,
    aggregate,
    charge_amount,
    charge_line_sources,
    fee_days,
    lines_total,
    parse_tiers,
    prorated_fee,
    rate_subscription_month,
)

D = Decimal
NOV = dt.date(2026, 11, 1)
API_TIERS = parse_tiers(
    [
        {"up_to": 1000, "unit_amount": "0"},
        {"up_to": 10000, "unit_amount": "0.01"},
        {"up_to": None, "unit_amount": "0.005"},
    ]
)

units_st = st.integers(min_value=0, max_value=200_000).map(Decimal)
price_st = st.integers(min_value=0, max_value=10**8).map(lambda n: Decimal(n).scaleb(-6))


@st.composite
def tiers_st(draw) -> tuple[Tier, ...]:
    bounds = sorted(draw(st.sets(st.integers(1, 100_000), min_size=0, max_size=5)))
    ups: list[Decimal | None] = [Decimal(b) for b in bounds] + [None]
    return tuple(
        Tier(up, draw(price_st), draw(st.sampled_from([D(0), D(0), D("2.50"), D("10")])))
        for up in ups
    )


def _terms(**overrides) -> SubscriptionTerms:
    values: dict[str, Any] = {
        "id": 7,
        "plan_code": "scale",
        "plan_name": "Scale",
        "currency": "USD",
        "amount": D("100.00"),
        "setup_fee": D("0"),
        "start_date": NOV,
        "end_date": None,
        "trial_end_date": None,
        "charges": (),
    }
    values.update(overrides)
    return SubscriptionTerms(**values)


def _api_calls(model) -> ChargeTerms:
    return ChargeTerms("api_calls", "API calls", "calls", "sum", model)


# --- the reference example ------------------------------------------------------------


def test_graduated_plan_from_the_11th_of_a_30_day_month_is_66_67_of_fee_and_100_of_usage():
    # given a 100.00 plan with the graduated api_calls charge, from 11 Nov
    terms = _terms(start_date=dt.date(2026, 11, 11), charges=(_api_calls(Graduated(API_TIERS)),))
    # when November is rated with 12,000 calls
    lines = rate_subscription_month(terms, NOV, {"api_calls": D(12000)})
    # then
    fees = [line for line in lines if line.type == "plan_fee"]
    usage = [line for line in lines if line.type == "usage"]
    assert [(f.name, line_cost(f.quantity, f.unit_price, "USD")) for f in fees] == [
        ("Scale plan, 11-30 Nov 2026", D("66.67"))
    ]
    assert fees[0].description == "Scale plan, 11-30 Nov 2026: 20 of 30 days at 100.00 USD a month"
    assert [(u.name, u.quantity, u.unit_price, u.source) for u in usage] == [
        ("API calls, 0-1,000 x 0.00", D(1000), D(0), "charge:7:api_calls:tier1"),
        ("API calls, 1,001-10,000 x 0.01", D(9000), D("0.01"), "charge:7:api_calls:tier2"),
        ("API calls, above 10,000 x 0.005", D(2000), D("0.005"), "charge:7:api_calls:tier3"),
    ]
    assert lines_total(usage, "USD") == D("100.00")
    assert lines_total(lines, "USD") == D("166.67")
    assert charge_line_sources(lines) == {(7, "api_calls"): "charge:7:api_calls:tier1"}


# --- worked examples, to the cent ------------------------------------------------------


@pytest.mark.parametrize(
    ("units", "expected"),
    [(D(0), D(0)), (D(1000), D(0)), (D(1001), D("0.01")), (D(10000), D("90.00")),
     (D(10001), D("90.01")), (D(12000), D("100.00")), (D("10500.5"), D("92.50"))],
)  # fmt: skip
def test_graduated_examples(units, expected):
    assert charge_amount(Graduated(API_TIERS), units, "USD") == expected


def test_graduated_flat_amounts_are_lines_of_their_own_for_each_tier_reached():
    tiers = parse_tiers(
        [
            {"up_to": "100", "unit_amount": "1", "flat_amount": "10"},
            {"up_to": None, "unit_amount": "0.5", "flat_amount": "20"},
        ]
    )
    parts = Graduated(tiers).lines(D(150))
    assert [(p.key, p.quantity, p.unit_price, p.flat) for p in parts] == [
        ("tier1", D(100), D(1), False),
        ("tier1:flat", D(1), D(10), True),
        ("tier2", D(50), D("0.5"), False),
        ("tier2:flat", D(1), D(20), True),
    ]
    assert charge_amount(Graduated(tiers), D(150), "USD") == D("155.00")
    assert charge_amount(Graduated(tiers), D(0), "USD") == D(0)


@pytest.mark.parametrize(
    ("units", "expected"),
    [(D(0), D(0)), (D(1000), D(0)), (D(1001), D("10.01")), (D(10000), D("100.00")),
     (D(12000), D("60.00"))],
)  # fmt: skip
def test_volume_examples(units, expected):
    assert charge_amount(Volume(API_TIERS), units, "USD") == expected


def test_volume_bills_every_unit_at_the_tier_reached_plus_its_flat_amount():
    tiers = parse_tiers(
        [
            {"up_to": "100", "unit_amount": "1", "flat_amount": "0"},
            {"up_to": None, "unit_amount": "0.5", "flat_amount": "20"},
        ]
    )
    lines = rate_subscription_month(
        _terms(amount=D(0), charges=(_api_calls(Volume(tiers)),)), NOV, {"api_calls": D(150)}
    )
    assert [(line.name, line.quantity, line.unit_price) for line in lines] == [
        ("API calls, above 100 x 0.50", D(150), D("0.5")),
        ("API calls, above 100, flat fee", D(1), D(20)),
    ]
    assert lines_total(lines, "USD") == D("95.00")


@pytest.mark.parametrize(
    ("units", "expected"),
    [(D(0), D(0)), (D(100), D(0)), (D(101), D("5.00")), (D(1100), D("5.00")),
     (D(1101), D("10.00")), (D("2100.5"), D("15.00"))],
)  # fmt: skip
def test_package_examples(units, expected):
    model = Package(unit_amount=D("5"), package_size=1000, free_units=D(100))
    assert charge_amount(model, units, "USD") == expected


@pytest.mark.parametrize(
    ("units", "expected"),
    [(D(0), D(0)), (D(500), D(0)), (D(501), D("0.00")), (D(3000), D("0.63")),
     (D("1234.5678"), D("0.18"))],
)  # fmt: skip
def test_per_unit_examples(units, expected):
    # 0.00025 per unit after 500 free: 2,500 x 0.00025 = 0.625 -> 0.63 (half up)
    assert charge_amount(PerUnit(D("0.00025"), D(500)), units, "USD") == expected


def test_per_unit_in_a_currency_without_minor_units():
    assert charge_amount(PerUnit(D("0.3")), D(5), "JPY") == D(2)


def test_setup_fee_only_in_the_start_month_and_trial_days_owe_no_fee():
    terms = _terms(
        start_date=dt.date(2026, 11, 21),
        trial_end_date=dt.date(2026, 11, 25),
        setup_fee=D("49.00"),
        amount=D("30.00"),
    )
    november = rate_subscription_month(terms, NOV, {})
    assert [(line.name, line.unit_price, line.source) for line in november] == [
        ("Scale plan, 26-30 Nov 2026", D("5.00"), "plan:7:fee:2026-11-26-2026-11-30"),
        ("Scale plan, setup fee", D("49.00"), "setup:7"),
    ]
    december = rate_subscription_month(terms, dt.date(2026, 12, 1), {})
    assert [(line.name, line.unit_price) for line in december] == [
        ("Scale plan, 1-31 Dec 2026", D("30.00"))
    ]


def test_a_month_outside_the_subscription_has_no_lines():
    terms = _terms(start_date=dt.date(2026, 12, 5), charges=(_api_calls(PerUnit(D(1))),))
    assert rate_subscription_month(terms, NOV, {"api_calls": D(5)}) == []
    ended = _terms(start_date=dt.date(2026, 1, 1), end_date=dt.date(2026, 10, 31))
    assert rate_subscription_month(ended, NOV, {}) == []


def test_tier_lists_are_checked_naming_the_bad_value():
    cases = [
        ([], "tiers"),
        ([{"up_to": 10, "unit_amount": "1"}], "tiers[0].up_to"),
        ([{"up_to": None, "unit_amount": "1"}, {"up_to": None, "unit_amount": "1"}],
         "tiers[0].up_to"),
        ([{"up_to": 10, "unit_amount": "1"}, {"up_to": 5, "unit_amount": "1"},
          {"up_to": None, "unit_amount": "1"}], "tiers[1].up_to"),
        ([{"up_to": None, "unit_amount": "-1"}], "tiers[0].unit_amount"),
        ([{"up_to": None, "unit_amount": "0.000000001"}], "tiers[0].unit_amount"),
        ([{"up_to": None, "unit_amount": True}], "tiers[0].unit_amount"),
        ([{"up_to": None}], "tiers[0].unit_amount"),
        ([{"up_to": None, "unit_amount": "1", "flat_amount": "NaN"}], "tiers[0].flat_amount"),
        ([{"up_to": None, "unit_amount": "1", "price": "1"}], "tiers[0].price"),
        (["x"], "tiers[0]"),
    ]  # fmt: skip
    for raw, field in cases:
        with pytest.raises(TierError) as info:
            parse_tiers(raw)
        assert info.value.field == field, raw


# --- properties ------------------------------------------------------------------------


def _units_in_tier_brute_force(units: int, tiers: tuple[Tier, ...], index: int) -> int:
    """Count, unit by unit, the units 1..units that fall in tier `index`."""
    lower = 0 if index == 0 else int(tiers[index - 1].up_to)
    upper = tiers[index].up_to
    return sum(1 for u in range(1, units + 1) if u > lower and (upper is None or u <= upper))


@settings(max_examples=150, deadline=None)
@given(tiers=tiers_st(), units=st.integers(0, 3000))
def test_graduated_equals_the_sum_over_its_tiers(tiers, units):
    expected = D(0)
    for index, tier in enumerate(tiers):
        in_tier = _units_in_tier_brute_force(units, tiers, index)
        if in_tier:
            expected += line_cost(D(in_tier), tier.unit_amount, "USD")
            expected += line_cost(D(1), tier.flat_amount, "USD")
    assert charge_amount(Graduated(tiers), D(units), "USD") == expected


@settings(max_examples=150, deadline=None)
@given(tiers=tiers_st(), units=st.integers(0, 3000))
def test_volume_against_a_brute_force_oracle(tiers, units):
    # The oracle: walk up the tiers until one holds all the units.
    expected = D(0)
    if units:
        for tier in tiers:
            if tier.up_to is None or units <= tier.up_to:
                expected = line_cost(D(units), tier.unit_amount, "USD") + quantize(
                    tier.flat_amount, "USD"
                )
                break
    assert charge_amount(Volume(tiers), D(units), "USD") == expected


@settings(max_examples=150, deadline=None)
@given(
    units=st.integers(0, 5000),
    size=st.integers(1, 700),
    free=st.integers(0, 2000),
    price=price_st,
)
def test_package_against_a_brute_force_oracle(units, size, free, price):
    # The oracle: hand out the billable units one at a time, opening a package when full.
    packages, room = 0, 0
    for _ in range(max(units - free, 0)):
        if room == 0:
            packages, room = packages + 1, size
        room -= 1
    model = Package(unit_amount=price, package_size=size, free_units=D(free))
    assert charge_amount(model, D(units), "USD") == line_cost(D(packages), price, "USD")


@settings(max_examples=150, deadline=None)
@given(units=units_st, free=units_st, price=price_st)
def test_free_units_are_never_charged(units, free, price):
    with_free = charge_amount(PerUnit(price, free), units, "USD")
    assert with_free == line_cost(max(units - free, D(0)), price, "USD")
    if units <= free:
        assert with_free == 0
    assert with_free <= charge_amount(PerUnit(price), units, "USD")


@settings(max_examples=100, deadline=None)
@given(
    tiers=tiers_st(),
    units=st.integers(0, 50_000).map(D),
    free=st.integers(0, 20_000).map(D),
    size=st.integers(1, 1000),
)
def test_usage_always_gets_a_line_and_every_line_a_quantity_a_line_can_hold(
    tiers, units, free, size
):
    for model in (
        Graduated(tiers),
        Volume(tiers),
        PerUnit(D("0.01"), free),
        Package(D("5"), size, free),
    ):
        parts = model.lines(units)
        # Usage always shows on the invoice (free units on a line at 0), so every
        # record of a charge has a line to be linked to.
        assert bool(parts) == (units > 0)
        for part in parts:
            assert part.quantity > 0
            assert part.quantity == part.quantity.quantize(D("0.0001"))
        assert len({part.key for part in parts}) == len(parts)


def test_free_units_show_on_a_line_at_zero():
    terms = _terms(amount=D(0), charges=(_api_calls(PerUnit(D("0.002"), D(10000))),))
    lines = rate_subscription_month(terms, NOV, {"api_calls": D(12641)})
    assert [(line.name, line.quantity, line.unit_price, line.source) for line in lines] == [
        ("API calls, 10,000 free x 0.00", D(10000), D(0), "charge:7:api_calls:free"),
        ("API calls, above 10,000 free x 0.002", D(2641), D("0.002"), "charge:7:api_calls:units"),
    ]
    assert lines_total(lines, "USD") == D("5.28")


month_st = st.dates(min_value=dt.date(2001, 1, 1), max_value=dt.date(2099, 12, 1)).map(
    months.month_start
)


@settings(max_examples=150, deadline=None)
@given(month=month_st, data=st.data())
def test_a_month_split_by_plan_changes_charges_each_day_exactly_once(month, data):
    # given a chain of subscriptions, each ended the day before the next starts
    dim = months.days_in_month(month)
    cuts = sorted(data.draw(st.sets(st.integers(2, dim), max_size=5)))
    starts = [month - dt.timedelta(days=data.draw(st.integers(0, 40)))] + [
        month.replace(day=day) for day in cuts
    ]
    ends: list[dt.date | None] = [start - dt.timedelta(days=1) for start in starts[1:]] + [None]
    # when each one's fee days are taken
    charged: list[dt.date] = []
    for start, end in zip(starts, ends, strict=True):
        days = fee_days(start, end, None, month)
        if days is not None:
            first, last = days
            charged += [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
    # then every day of the month is charged once
    assert sorted(charged) == [month + dt.timedelta(days=n) for n in range(dim)]
    # and the same plan across the pieces adds up to the fee, within a cent per piece
    amount = D("99.99")
    pieces = [
        prorated_fee(amount, (d[1] - d[0]).days + 1, month, "USD")
        for d in (fee_days(s, e, None, month) for s, e in zip(starts, ends, strict=True))
        if d is not None
    ]
    assert abs(sum(pieces) - amount) <= D("0.005") * len(pieces)


@settings(max_examples=150, deadline=None)
@given(month=month_st, cents=st.integers(0, 10**9))
def test_proration_of_a_whole_month_equals_the_fee(month, cents):
    amount = D(cents).scaleb(-2)
    terms = _terms(amount=amount, start_date=month - dt.timedelta(days=3))
    lines = rate_subscription_month(terms, month, {})
    assert lines_total(lines, "USD") == amount
    assert fee_days(month, None, None, month) == (month, months.month_end(month))


def test_active_days_clip_to_the_month():
    assert active_days(dt.date(2026, 10, 20), dt.date(2026, 11, 5), NOV) == (
        NOV,
        dt.date(2026, 11, 5),
    )
    assert active_days(dt.date(2026, 10, 20), dt.date(2026, 10, 31), NOV) is None


@pytest.mark.parametrize(
    ("aggregation", "expected"),
    [("sum", D("7.5")), ("max", D(4)), ("count", D(3)), ("unique_count", D(2))],
)
def test_aggregations(aggregation, expected):
    records = [(D(1), "a"), (D("2.5"), "b"), (D(4), "a")]
    assert aggregate(aggregation, records) == expected
    assert aggregate(aggregation, []) == 0


def test_long_names_fit_an_invoice_line():
    terms = _terms(plan_name="P" * 255, setup_fee=D(1), charges=(
        ChargeTerms("api_calls", "A" * 255, "calls", "sum", PerUnit(D(1))),
    ))  # fmt: skip
    for line in rate_subscription_month(terms, NOV, {"api_calls": D(3)}):
        assert len(line.name) <= 255
