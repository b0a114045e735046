"""The XML writer and the value formats behind the 3scale representations."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from billing.api.threescale.values import (
    JsonNumber,
    dumps,
    iso_time,
    plain_decimal,
    ruby_decimal,
    ruby_time,
)
from billing.api.threescale.xml import Element, container, document


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("110.0000"), "110.0"),
        (Decimal("36.28"), "36.28"),
        (Decimal("0E-4"), "0.0"),
        (Decimal("1E+2"), "100.0"),
        (Decimal("123456789012.3456"), "123456789012.3456"),
        (Decimal("-5.50"), "-5.5"),
    ],
)
def test_ruby_decimal(value, text):
    assert ruby_decimal(value) == text


def test_plain_decimal_for_quantities():
    assert plain_decimal(Decimal("1.0000")) == "1"
    assert plain_decimal(Decimal("2.5000")) == "2.5"


def test_times_are_utc_without_fractions():
    moment = dt.datetime(2026, 2, 5, 4, 0, 12, 999999, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert iso_time(moment) == "2026-02-05T03:00:12Z"
    assert ruby_time(moment) == "2026-02-05 03:00:12 UTC"


def test_dumps_keeps_order_and_decimal_digits():
    data = {"b": JsonNumber("0.1"), "a": [Decimal("1.10"), None, True, 'é"<'], "c": {}}
    assert dumps(data) == '{"b":0.1,"a":[1.1,null,true,"é\\"<"],"c":{}}'


def test_dumps_refuses_what_json_cannot_carry():
    with pytest.raises(ValueError):
        dumps({"x": Decimal("NaN")})
    with pytest.raises(TypeError):
        dumps({"x": object()})


def test_nil_and_empty_forms():
    root = Element("a", children=[Element("nil"), Element("empty", ""), Element("v", "1")])
    assert root.to_string() == "<a><nil/><empty></empty><v>1</v></a>"


def test_containers():
    assert container("line-items", []).to_string() == "<line-items/>"
    assert (
        container("line_items", [], empty_as_pair=True).to_string() == "<line_items></line_items>"
    )
    assert container("p", [], total="2").to_string() == '<p total="2"/>'


def test_escaping_and_invalid_characters():
    element = Element("e", 'a&b<c>"\x00\x1f', attributes={"k": 'x"&<'})
    assert element.to_string() == '<e k="x&quot;&amp;&lt;">a&amp;b&lt;c&gt;"\ufffd\ufffd</e>'


@pytest.mark.parametrize("name", ["1abc", "a b", "", "xmlfoo", "a<b"])
def test_invalid_names_are_refused(name):
    with pytest.raises(ValueError):
        Element(name)


def test_document_has_the_declaration():
    assert document(Element("error", "Access denied")) == (
        b'<?xml version="1.0" encoding="UTF-8"?><error>Access denied</error>'
    )
