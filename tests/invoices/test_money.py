"""Rounding and the totals identities, under property-based tests."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.lib.money import line_cost, minor_units, parse_decimal, quantize, vat_amount
from invoices import services
from invoices.models import Invoice
from tests.factories import AccountFactory

CURRENCIES = ["USD", "EUR", "JPY", "KWD", "GBP"]


def test_quantize_half_up_per_currency():
    assert quantize(Decimal("1.005"), "USD") == Decimal("1.01")
    assert quantize(Decimal("1.0049"), "EUR") == Decimal("1.00")
    assert quantize(Decimal("2.5"), "JPY") == Decimal("3")
    assert quantize(Decimal("1.0005"), "KWD") == Decimal("1.001")
    assert quantize(Decimal("-1.005"), "USD") == Decimal("-1.01")


def test_quantize_refuses_float():
    with pytest.raises(TypeError):
        quantize(1.5, "USD")  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-inf", "1e400x", "abc", True, None, [1]])
def test_parse_decimal_refuses_non_numbers(value):
    with pytest.raises(ValueError):
        parse_decimal(value)


def test_parse_decimal_keeps_precision():
    assert parse_decimal("0.1") + parse_decimal("0.2") == Decimal("0.3")
    assert parse_decimal(0.1) == Decimal("0.1")


prices = st.decimals(min_value=Decimal("0"), max_value=Decimal("99999"), places=4)
quantities = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("9999"), places=4)
vat_rates = st.one_of(
    st.none(), st.decimals(min_value=Decimal("0"), max_value=Decimal("30"), places=2)
)


@given(
    currency=st.sampled_from(CURRENCIES),
    lines=st.lists(st.tuples(quantities, prices), min_size=0, max_size=6),
    vat_rate=vat_rates,
)
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@pytest.mark.django_db
def test_invoice_totals_identities(currency, lines, vat_rate):
    # given an account in that currency and VAT rate
    account = AccountFactory(currency=currency, vat_rate=vat_rate)
    invoice = services.invoice_create(account=account, actor="t")
    # when lines are added and the invoice is issued
    for quantity, price in lines:
        services.line_item_add(
            invoice=invoice, name="x", quantity=quantity, unit_price=price, actor="t"
        )
    invoice = services.invoice_issue(invoice=invoice, actor="t")
    invoice = Invoice.objects.get(pk=invoice.pk)
    stored = list(invoice.line_items.all())
    # then every money identity holds, exactly: line costs, net, VAT and total
    exponent = Decimal(1).scaleb(-minor_units(currency))
    for line in stored:
        assert line.cost == line_cost(line.quantity, line.unit_price, currency)
        assert line.cost == line.cost.quantize(exponent)
    expected_net = sum((line.cost for line in stored), Decimal("0"))
    assert invoice.cost_without_vat == expected_net
    assert invoice.vat_amount == vat_amount(expected_net, vat_rate, currency)
    assert invoice.cost == invoice.cost_without_vat + invoice.vat_amount
    assert invoice.vat_rate == vat_rate


@given(
    amount=st.decimals(
        allow_nan=False, allow_infinity=False, min_value=-(10**9), max_value=10**9, places=6
    ),
    currency=st.sampled_from(CURRENCIES),
)
def test_quantize_is_within_half_a_minor_unit(amount, currency):
    rounded = quantize(amount, currency)
    unit = Decimal(1).scaleb(-minor_units(currency))
    assert abs(rounded - amount) <= unit / 2
    assert quantize(rounded, currency) == rounded
