"""Country codes and VAT ids of accounts and the seller: checked offline, stored compact."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from accounts.models import Account, Seller
from billing.lib.vat_ids import InvalidVatId, normalize_vat_id


@pytest.mark.parametrize(
    ("typed", "country", "stored"),
    [
        ("es b-5837 8431", "", "ESB58378431"),
        ("DE 136 695 976", "DE", "DE136695976"),
        ("136695976", "DE", "DE136695976"),  # the prefix comes from the country
        ("094259216", "GR", "EL094259216"),  # Greece's VAT prefix is EL
        ("12-3456789", "US", "12-3456789"),  # outside the EU: kept as typed
        ("", "FR", ""),
    ],
)
def test_vat_ids_are_checked_and_compacted(typed, country, stored):
    assert normalize_vat_id(typed, country) == stored


@pytest.mark.parametrize("typed", ["DE123", "ES123", "FR00303265045", "DE136695977"])
def test_wrong_eu_vat_ids_are_refused(typed):
    with pytest.raises(InvalidVatId):
        normalize_vat_id(typed)


@pytest.mark.django_db
class TestModels:
    def test_account_clean_compacts_the_vat_id(self):
        account = Account(org_name="Käufer GmbH", country_code="DE", vat_code="136 695 976")
        account.full_clean()
        assert account.vat_code == "DE136695976"

    def test_account_clean_refuses_a_bad_vat_id(self):
        account = Account(org_name="Käufer GmbH", country_code="DE", vat_code="DE123")
        with pytest.raises(ValidationError) as error:
            account.full_clean()
        assert "vat_code" in error.value.message_dict

    def test_an_exempt_account_needs_a_reason(self):
        account = Account(org_name="Charity", country_code="ES", tax_exempt=True)
        with pytest.raises(ValidationError) as error:
            account.full_clean()
        assert "tax_exempt_reason" in error.value.message_dict

    def test_country_code_is_iso_3166(self):
        account = Account(org_name="Acme", country_code="XX")
        with pytest.raises(ValidationError) as error:
            account.full_clean()
        assert "country_code" in error.value.message_dict

    def test_seller_clean_checks_its_vat_id(self):
        seller = Seller.load()
        seller.country_code, seller.vat_id = "ES", "B58378431"
        seller.full_clean()
        assert seller.vat_id == "ESB58378431"
        seller.vat_id = "ES123"
        with pytest.raises(ValidationError):
            seller.full_clean()
