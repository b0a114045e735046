"""The strict parser every API parameter and field goes through."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from billing.api import parsing

NOT_ASCII_DIGITS = ["²", "²²²²", "١٢", "１２", "1_000", "0x10", "1e3", " ", "", "12abc", "--1"]


@pytest.mark.parametrize("value", NOT_ASCII_DIGITS + [True, None, 1.5, [1], {"a": 1}])
def test_integers_are_ascii_digits_only(value):
    with pytest.raises(parsing.Invalid) as caught:
        parsing.parse_int(value)
    assert caught.value.message == "must be an integer"


@pytest.mark.parametrize(
    ("value", "expected"), [("12", 12), (" 7 ", 7), ("-3", -3), (42, 42), (Decimal("5"), 5)]
)
def test_integers(value, expected):
    assert parsing.parse_int(value) == expected


def test_a_huge_integer_is_refused_before_conversion():
    with pytest.raises(parsing.Invalid) as caught:
        parsing.parse_int("9" * 5000)
    assert "int_max_str_digits" not in caught.value.message
    assert caught.value.message == "must be an integer"


def test_integer_bounds_are_in_the_message():
    with pytest.raises(parsing.Invalid, match="from 1 to 10"):
        parsing.parse_int("11", minimum=1, maximum=10)
    with pytest.raises(parsing.Invalid, match="from 1 to"):
        parsing.parse_id("0")
    with pytest.raises(parsing.Invalid):
        parsing.parse_id(str(2**63))


@pytest.mark.parametrize("value", ["0000", "²²²²", "10000", "0", "-1", "1_99"])
def test_years_are_1_to_9999(value):
    with pytest.raises(parsing.Invalid, match="year from 1 to 9999"):
        parsing.parse_year(value)


def test_years():
    assert parsing.parse_year("0001") == 1
    assert parsing.parse_year("9999") == 9999


@pytest.mark.parametrize("value", ["²", "0", "13", "١"])
def test_month_numbers(value):
    with pytest.raises(parsing.Invalid, match="month number"):
        parsing.parse_month_number(value)


@pytest.mark.parametrize("value", ["1_000", "١٢", "²", "1e99999", "NaN", "Infinity", "9" * 100])
def test_decimals_are_ascii_and_bounded(value):
    with pytest.raises(parsing.Invalid):
        parsing.parse_decimal(value)


def test_decimals():
    assert parsing.parse_decimal("10.40") == Decimal("10.40")
    assert parsing.parse_decimal(" -0.5 ") == Decimal("-0.5")
    assert parsing.parse_decimal("1e3") == Decimal("1000")
    with pytest.raises(parsing.Invalid, match="finite"):
        parsing.parse_decimal(Decimal("NaN"))


@pytest.mark.parametrize("value", ["0000-01-01", "2026-02-30", "٢٠٢٦-01-01", "2026-1-1", 20260101])
def test_dates(value):
    with pytest.raises(parsing.Invalid):
        parsing.parse_date(value)


def test_dates_at_the_ends_of_the_calendar():
    assert parsing.parse_date("9999-12-31") == dt.date(9999, 12, 31)
    assert parsing.parse_date("0001-01-01") == dt.date(1, 1, 1)


def test_months():
    assert parsing.parse_month("9999-12") == dt.date(9999, 12, 1)
    for value in ("0000-01", "2026-13", "²０２６-01"):
        with pytest.raises(parsing.Invalid):
            parsing.parse_month(value)


@pytest.mark.parametrize(
    ("value", "problem"),
    [("a\x00b", "NUL"), ("\ud800", "surrogate"), ("x\udfffy", "surrogate")],
)
def test_text_that_cannot_be_stored(value, problem):
    with pytest.raises(parsing.Invalid, match=problem):
        parsing.clean_text(value)


def test_text():
    assert parsing.clean_text("Zoë 😀 \t\n") == "Zoë 😀 \t\n"


def test_bad_text_names_each_field():
    document = {
        "name": "ok",
        "lines": [{"description": "\ud800"}],
        "x": {"y": "a\x00"},
        "\ud800": 1,
    }
    found = dict(parsing.bad_text(document))
    assert set(found) == {"lines[0].description", "x.y", "non_field_errors"}
