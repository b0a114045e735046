"""The seller profile: registration details and one bank account per currency, edited in
the Seller admin (the accounts inline), checked offline and frozen on issued invoices."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from accounts.models import Seller, SellerBankAccount

pytestmark = pytest.mark.django_db
URL = reverse("admin:accounts_seller_change", args=[1])


@pytest.fixture
def finance(client, django_user_model):
    user = django_user_model.objects.create_user("fin", password="fin-password-123", is_staff=True)
    user.groups.add(Group.objects.get(name="Finance"))
    client.force_login(user)
    return client


def form(accounts: list[dict], **fields) -> dict:
    data = {
        "name": "Nube S.L.", "email": "", "phone": "", "vat_id": "", "address_line1": "",
        "address_line2": "", "city": "", "address_state": "", "zip": "", "country": "",
        "country_code": "", "registration_id": "B58378431", "legal_form": "S.L.",
        "registered_office": "Calle de Alcalá 42, Madrid", "share_capital": "3,000 EUR",
        "bank_name": "", "bank_account_holder": "", "iban": "", "bic": "", "invoice_footer": "",
        "bank_accounts-TOTAL_FORMS": str(len(accounts)), "bank_accounts-INITIAL_FORMS": "0",
        "bank_accounts-MIN_NUM_FORMS": "0", "bank_accounts-MAX_NUM_FORMS": "1000",
    }  # fmt: skip
    for index, account in enumerate(accounts):
        for key in ("currency", "account_holder", "bank_name", "iban", "bic"):
            data[f"bank_accounts-{index}-{key}"] = account.get(key, "")
    data.update(fields)
    return data


def test_registration_details_and_an_account_per_currency_are_saved(finance):
    Seller.load()
    response = finance.post(
        URL,
        form(
            [
                {"currency": "EUR", "iban": "es79 2100 0813 6101 2345 6789", "bic": "CAIXESBBXXX"},
                {"currency": "USD", "iban": "GB33BUKB20201555555555", "bic": "BUKBGB22"},
            ]
        ),
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    seller = Seller.load()
    assert (seller.registration_id, seller.legal_form, seller.share_capital) == (
        "B58378431",
        "S.L.",
        "3,000 EUR",
    )
    assert dict(SellerBankAccount.objects.values_list("currency", "iban")) == {
        "EUR": "ES7921000813610123456789",  # stored compact
        "USD": "GB33BUKB20201555555555",
    }
    assert seller.bank_details("USD")["iban"] == "GB33BUKB20201555555555"
    assert seller.bank_details("GBP")["iban"] == ""  # no GBP account: the default (none)


@pytest.mark.parametrize(
    ("account", "field"),
    [
        ({"currency": "EUR", "iban": "ES00 1234"}, "iban"),
        ({"currency": "EUR", "iban": "ES7921000813610123456789", "bic": "NOT A BIC"}, "bic"),
        ({"currency": "EUR", "iban": ""}, "iban"),
    ],
)
def test_a_bad_account_is_refused_and_nothing_is_saved(finance, account, field):
    Seller.load()
    response = finance.post(URL, form([account]))
    assert response.status_code == 200
    [errors] = response.context["inline_admin_formsets"][0].formset.errors
    assert field in errors
    assert not SellerBankAccount.objects.exists()
    assert Seller.load().registration_id == ""


def test_one_account_per_currency(finance):
    Seller.load()
    twice = {"currency": "EUR", "iban": "ES7921000813610123456789"}
    response = finance.post(URL, form([twice, twice]))
    assert response.status_code == 200
    assert not SellerBankAccount.objects.exists()


def test_the_default_iban_is_checked_too(finance):
    Seller.load()
    response = finance.post(URL, form([], iban="DE00 0000"))
    assert response.status_code == 200
    assert "iban" in response.context["adminform"].form.errors
