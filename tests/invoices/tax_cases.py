"""A seller in Spain and one buyer per tax case, for the tax and e-invoice tests."""

from __future__ import annotations

from decimal import Decimal

from accounts.models import Account, Seller
from invoices.models import Invoice
from tests.factories import AccountFactory, make_invoice

SPANISH_SELLER = {
    "name": "Nube Facturación S.L.",
    "address_line1": "Calle de Alcalá 42",
    "city": "Madrid",
    "zip": "28014",
    "country": "Spain",
    "country_code": "ES",
    "email": "facturas@nube.example",
    "vat_id": "ESB58378431",
    "bank_name": "Banco Ejemplo",
    "bank_account_holder": "Nube Facturación S.L.",
    "iban": "ES9121000418450200051332",
    "bic": "CAIXESBBXXX",
}

# case -> the buyer account's fields
BUYERS: dict[str, dict] = {
    "domestic": {
        "org_name": "Cliente Madrid S.A.",
        "country": "Spain",
        "country_code": "ES",
        "city": "Madrid",
        "zip": "28001",
        "vat_code": "ESA12345674",
    },
    "reverse_charge": {
        "org_name": "Käufer GmbH",
        "country": "Germany",
        "country_code": "DE",
        "city": "Berlin",
        "zip": "10115",
        "vat_code": "DE136695976",
    },
    "eu_consumer": {
        "org_name": "Camille Martin",
        "country": "France",
        "country_code": "FR",
        "city": "Lyon",
        "zip": "69001",
        "is_business": False,
    },
    "outside_eu": {
        "org_name": "Acme Corp.",
        "country": "United States",
        "country_code": "US",
        "city": "Springfield",
        "zip": "12345",
        "address_state": "IL",
    },
    "exempt": {
        "org_name": "Fundación Salud",
        "country": "Spain",
        "country_code": "ES",
        "city": "Sevilla",
        "zip": "41001",
        "vat_code": "ESB58378431",
        "tax_exempt": True,
        "tax_exempt_reason": "Exempt under Article 20.Uno.3 Ley 37/1992 (medical care)",
    },
}

CASES = tuple(BUYERS)


def spanish_seller() -> Seller:
    seller = Seller.load()
    for field, value in SPANISH_SELLER.items():
        setattr(seller, field, value)
    seller.save()
    return seller


def buyer(case: str) -> Account:
    return AccountFactory(
        currency="EUR", address_line1="Street 1", billing_email="ap@buyer.example", **BUYERS[case]
    )


def issued_invoice(case: str, state: str = Invoice.State.PENDING) -> Invoice:
    """An invoice of the Spanish seller to the buyer of `case`, issued."""
    spanish_seller()
    return make_invoice(
        account=buyer(case), lines=[("3", "49.99"), ("1250", "0.0123")], state=state
    )


EXPECTED: dict[str, tuple[str, str, Decimal]] = {
    "domestic": ("domestic", "S", Decimal("21")),
    "reverse_charge": ("reverse_charge", "AE", Decimal("0")),
    "eu_consumer": ("eu_consumer", "S", Decimal("20")),
    "outside_eu": ("outside_eu", "O", Decimal("0")),
    "exempt": ("exempt", "E", Decimal("0")),
}
