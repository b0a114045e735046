"""The fast JSON path of the 3scale API writes exactly what the plain writer writes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.api.threescale.values import JSON_DIALECT, dumps, money
from billing.lib.json_codec import JsonNumber, plain_dumps


def plain(value) -> str:
    return plain_dumps(value, **JSON_DIALECT)


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.text(),
    st.decimals(allow_nan=False, allow_infinity=False, places=4, max_value=10**12),
    st.decimals(allow_nan=False, allow_infinity=False).map(money),
    st.datetimes(timezones=st.just(dt.UTC)),
    st.dates(),
)
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(st.text(max_size=8), children, max_size=5),
    ),
    max_leaves=40,
)


@given(documents)
def test_same_bytes_as_the_plain_writer(document):
    assert dumps(document) == plain(document)


def test_numbers_keep_their_digits():
    document = {"cost": money(Decimal("123456789012345678.1000")), "q": Decimal("2.50")}
    assert dumps(document) == '{"cost":123456789012345678.1,"q":2.5}'
    assert dumps([JsonNumber("0.0")]) == "[0.0]"


@pytest.mark.parametrize(
    ("document", "error"),
    [
        ({"x": Decimal("NaN")}, ValueError),
        ({"x": Decimal("Infinity")}, ValueError),
        ({"x": object()}, TypeError),
        ({"x": dt.time(12, 0)}, TypeError),
    ],
)
def test_refuses_what_the_plain_writer_refuses(document, error):
    with pytest.raises(error):
        dumps(document)


def test_what_orjson_refuses_is_written_by_the_plain_writer():
    document = {1: 2**80, "s": "\ud800"}
    assert dumps(document) == plain(document)
