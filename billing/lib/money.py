"""Money helpers: Decimal only, one rounding rule (half-up to the currency's minor unit)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

# ISO 4217 minor units for the currencies whose exponent is not 2.
_MINOR_UNITS_EXCEPTIONS: dict[str, int] = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
    "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0,
    "XPF": 0, "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
}  # fmt: skip

# Currencies accepted on accounts and invoices (ISO 4217 active codes in common use).
CURRENCIES: tuple[str, ...] = (
    "AED", "ARS", "AUD", "BGN", "BHD", "BRL", "CAD", "CHF", "CLP", "CNY", "COP", "CZK",
    "DKK", "EGP", "EUR", "GBP", "HKD", "HUF", "IDR", "ILS", "INR", "ISK", "JOD", "JPY",
    "KRW", "KWD", "MAD", "MXN", "MYR", "NGN", "NOK", "NZD", "OMR", "PEN", "PHP", "PLN",
    "RON", "SAR", "SEK", "SGD", "THB", "TND", "TRY", "TWD", "UAH", "USD", "VND", "ZAR",
)  # fmt: skip

ZERO = Decimal("0")
# Storage precision: totals and line costs are quantized to the currency's minor
# unit, but stored with four places so that 3-decimal currencies fit.
AMOUNT_MAX_DIGITS = 18
AMOUNT_DECIMAL_PLACES = 4
UNIT_PRICE_DECIMAL_PLACES = 8
QUANTITY_DECIMAL_PLACES = 4
# The largest amount an API accepts for one line or invoice.
MAX_AMOUNT = Decimal("999999999999.99")


def minor_units(currency: str) -> int:
    return _MINOR_UNITS_EXCEPTIONS.get(currency.upper(), 2)


def quantize(amount: Decimal, currency: str) -> Decimal:
    """Round half-up to the minor unit of `currency` (2 for USD/EUR, 0 for JPY)."""
    if not isinstance(amount, Decimal):
        raise TypeError(f"money must be Decimal, got {type(amount).__name__}")
    exponent = Decimal(1).scaleb(-minor_units(currency))
    return amount.quantize(exponent, rounding=ROUND_HALF_UP)


def as_written(value: Decimal, *, min_places: int = 0) -> Decimal:
    """The value as a person writes it: storage padding dropped, at least `min_places`
    decimals (801.0000 -> 801, 0.04160000 -> 0.0416, 0.500000 -> 0.50 with 2)."""
    exponent = value.normalize().as_tuple().exponent
    places = max(-exponent if isinstance(exponent, int) else 0, min_places, 0)
    return value.quantize(Decimal(1).scaleb(-places))


def line_cost(quantity: Decimal, unit_price: Decimal, currency: str) -> Decimal:
    """Line cost = round(quantity x unit price)."""
    return quantize(quantity * unit_price, currency)


def vat_amount(cost_without_vat: Decimal, vat_rate: Decimal | None, currency: str) -> Decimal:
    """VAT = round(cost_without_vat x vat_rate / 100); no rate means no VAT."""
    if not vat_rate:
        return quantize(ZERO, currency)
    return quantize(cost_without_vat * vat_rate / Decimal(100), currency)


def parse_decimal(value: object) -> Decimal:
    """Parse an API value into a finite Decimal without going through float.

    Accepts int, Decimal and numeric strings. Floats are converted through
    their shortest repr (JSON parsers configured with parse_float=Decimal
    never produce them). Raises ValueError for anything else, NaN or infinity.
    """
    if isinstance(value, bool):
        raise ValueError("must be a number")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError("must be a number") from None
    else:
        raise ValueError("must be a number")
    if not result.is_finite():
        raise ValueError("must be a finite number")
    return result
