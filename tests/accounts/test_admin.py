"""The account, seller and API-key admin: services only, secrets shown once, soft delete."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.contrib.messages import get_messages
from django.urls import reverse

from accounts.models import Account, ApiKey, Seller
from accounts.selectors import api_key_get_by_secret
from invoices.models import Invoice
from tests.factories import AccountFactory, make_api_key, make_invoice

ACCOUNTS = reverse("admin:accounts_account_changelist")
KEYS = reverse("admin:accounts_apikey_changelist")


@pytest.fixture
def finance(client, django_user_model):
    user = django_user_model.objects.create_user("fin", password="fin-password-123", is_staff=True)
    user.groups.add(Group.objects.get(name="Finance"))
    client.force_login(user)
    return client


@pytest.fixture
def auditor(client, django_user_model):
    user = django_user_model.objects.create_user("aud", password="aud-password-123", is_staff=True)
    user.groups.add(Group.objects.get(name="Auditor"))
    client.force_login(user)
    return client


@pytest.fixture
def superuser(client, staff_user):
    client.force_login(staff_user)
    return client


def account_form(**overrides) -> dict:
    data = {
        "org_name": "Acme",
        "billing_email": "ap@acme.test",
        "phone": "",
        "address_line1": "1 Main St",
        "address_line2": "",
        "city": "Springfield",
        "address_state": "",
        "zip": "12345",
        "country": "US",
        "vat_code": "",
        "vat_rate": "",
        "currency": "USD",
        "payment_terms_days": "30",
        "payment_method": "credit_card",
        "card_token": "tok_visa",
        "card_brand": "Visa",
        "card_last4": "4242",
        "card_exp_month": "12",
        "card_exp_year": "2030",
        "api_keys-TOTAL_FORMS": "0",
        "api_keys-INITIAL_FORMS": "0",
        "api_keys-MIN_NUM_FORMS": "0",
        "api_keys-MAX_NUM_FORMS": "1000",
    }
    data.update(overrides)
    return data


@pytest.mark.django_db
class TestAccountAdmin:
    def test_create_and_update(self, finance):
        response = finance.post(reverse("admin:accounts_account_add"), account_form())
        assert response.status_code == 302
        account = Account.objects.get(org_name="Acme")
        url = reverse("admin:accounts_account_change", args=[account.pk])
        response = finance.post(url, account_form(vat_rate="21", currency="EUR"))
        assert response.status_code == 302
        account.refresh_from_db()
        assert (account.vat_rate, account.currency) == (Decimal("21.00"), "EUR")

    def test_invalid_values_are_field_errors(self, finance):
        response = finance.post(
            reverse("admin:accounts_account_add"),
            account_form(vat_rate="150", card_token="4242 4242 4242 4242"),
        )
        assert response.status_code == 200
        errors = response.context["adminform"].form.errors
        assert "vat_rate" in errors
        assert "card number" in str(errors["card_token"])
        assert not Account.objects.exists()

    def test_card_is_displayed_masked(self, finance):
        account = AccountFactory(card_brand="Visa", card_last4="4242", card_exp_month=3)
        account.card_exp_year = 2031
        account.save()
        body = finance.get(ACCOUNTS).content.decode()
        # the list shows the card on two short lines, so the column is never clipped
        assert "Visa •••• 4242</span><br><small>exp 03/2031</small>" in body
        change = reverse("admin:accounts_account_change", args=[account.pk])
        assert "Visa •••• 4242 exp 03/2031" in finance.get(change).content.decode()

    def test_change_page_links_invoices_and_usage_with_counts(self, finance, settings, tmp_path):
        settings.MEDIA_ROOT = tmp_path
        account = AccountFactory()
        make_invoice(account=account)
        make_invoice(account=account)
        body = finance.get(reverse("admin:accounts_account_change", args=[account.pk])).content
        assert f"?account={account.pk}".encode() in body
        assert b"2 invoices" in body
        assert b"0 records" in body

    def test_soft_delete_action_keeps_invoices_and_revokes_keys(self, finance, settings, tmp_path):
        settings.MEDIA_ROOT = tmp_path
        account = AccountFactory()
        invoice = make_invoice(account=account, state=Invoice.State.PENDING)
        key, secret = make_api_key(account=account)
        response = finance.post(
            ACCOUNTS, {"action": "soft_delete_accounts", "_selected_action": [account.pk]}
        )
        assert response.status_code == 302
        account.refresh_from_db()
        assert account.state == Account.State.DELETED and account.deleted_at
        assert Invoice.objects.filter(pk=invoice.pk).exists()
        assert not api_key_get_by_secret(secret).is_usable()

    def test_delete_button_is_a_soft_delete(self, superuser, settings, tmp_path):
        settings.MEDIA_ROOT = tmp_path
        account = AccountFactory()
        make_invoice(account=account, state=Invoice.State.PENDING)
        url = reverse("admin:accounts_account_delete", args=[account.pk])
        page = superuser.get(url)
        assert page.status_code == 200
        assert not page.context["protected"]  # PROTECT does not block a soft delete
        response = superuser.post(url, {"post": "yes"})
        assert response.status_code == 302
        account.refresh_from_db()
        assert account.is_deleted
        assert account.invoices.count() == 1

    def test_deleted_account_is_read_only(self, finance):
        from accounts.services import account_soft_delete

        account = account_soft_delete(account=AccountFactory())
        url = reverse("admin:accounts_account_change", args=[account.pk])
        assert finance.get(url).context["has_change_permission"] is False
        assert finance.post(url, account_form(org_name="Revived")).status_code == 403

    def test_auditor_cannot_change_or_delete(self, auditor):
        account = AccountFactory()
        assert auditor.get(ACCOUNTS).context["action_form"] is None
        url = reverse("admin:accounts_account_change", args=[account.pk])
        assert auditor.post(url, account_form(org_name="X")).status_code == 403
        account.refresh_from_db()
        assert account.org_name != "X"


@pytest.mark.django_db
class TestApiKeyAdmin:
    def test_created_key_secret_is_shown_once_and_authenticates(self, finance, owner):
        response = finance.post(
            reverse("admin:accounts_apikey_add"),
            {
                "name": "ERP sync",
                "scope": "write",
                "account": owner.account.pk,
                "expires_at_0": "",
                "expires_at_1": "",
            },
        )
        assert response.status_code == 200
        assert "no-store" in response["Cache-Control"]
        body = response.content.decode()
        secret = re.search(r'id="api-key-secret"[^>]*>([^<]+)<', body).group(1)
        key = api_key_get_by_secret(secret)
        assert key is not None and key.is_usable()
        assert (key.name, key.scope, key.account_id) == ("ERP sync", "write", owner.account.pk)
        assert key.created_by.username == "fin"
        # the key works against the API
        api = finance.get("/v1/invoices", HTTP_AUTHORIZATION=f"Bearer {secret}")
        assert api.status_code == 200
        # never shown again, and the hash never shown at all
        detail = finance.get(reverse("admin:accounts_apikey_change", args=[key.pk])).content
        listing = finance.get(KEYS).content
        for page in (detail, listing):
            assert secret.encode() not in page
            assert key.key_hash.encode() not in page
        assert key.prefix.encode() in listing

    def test_revoke_action(self, finance):
        key, secret = make_api_key()
        response = finance.post(KEYS, {"action": "revoke_keys", "_selected_action": [key.pk]})
        assert response.status_code == 302
        assert not api_key_get_by_secret(secret).is_usable()

    def test_keys_cannot_be_deleted(self, superuser):
        key, _ = make_api_key()
        url = reverse("admin:accounts_apikey_delete", args=[key.pk])
        assert superuser.get(url).status_code == 403
        assert ApiKey.objects.filter(pk=key.pk).exists()

    def test_deleted_account_gets_no_key(self, finance):
        from accounts.services import account_soft_delete

        account = account_soft_delete(account=AccountFactory())
        response = finance.post(
            reverse("admin:accounts_apikey_add"),
            {"name": "x", "scope": "read", "account": account.pk},
        )
        assert response.status_code == 200
        assert "account" in response.context["adminform"].form.errors
        assert not ApiKey.objects.exists()

    def test_auditor_cannot_create_or_revoke(self, auditor):
        key, secret = make_api_key()
        assert auditor.get(reverse("admin:accounts_apikey_add")).status_code == 403
        auditor.post(KEYS, {"action": "revoke_keys", "_selected_action": [key.pk]})
        assert api_key_get_by_secret(secret).is_usable()


# The inline formset of the seller's bank accounts per currency, empty.
BANK_ACCOUNTS_NONE = {
    "bank_accounts-TOTAL_FORMS": "0",
    "bank_accounts-INITIAL_FORMS": "0",
    "bank_accounts-MIN_NUM_FORMS": "0",
    "bank_accounts-MAX_NUM_FORMS": "1000",
}


@pytest.mark.django_db
class TestSellerAdmin:
    def test_changelist_goes_to_the_single_row(self, finance):
        response = finance.get(reverse("admin:accounts_seller_changelist"))
        assert response.status_code == 302
        assert response["Location"] == reverse("admin:accounts_seller_change", args=[1])

    def test_edit_seller_is_printed_on_new_invoices(self, finance):
        url = reverse("admin:accounts_seller_change", args=[1])
        response = finance.post(
            url,
            {
                "name": "Finance Co",
                "email": "",
                "phone": "",
                "vat_id": "ESB58378431",
                "address_line1": "Main 1",
                "address_line2": "",
                "city": "Madrid",
                "address_state": "",
                "zip": "28001",
                "country": "Spain",
                "bank_name": "Bank",
                "bank_account_holder": "Finance Co",
                "iban": "ES91 2100 0418 4502 0005 1332",
                "bic": "BANKESMM",
                "invoice_footer": "Thanks",
                **BANK_ACCOUNTS_NONE,
            },
        )
        assert response.status_code == 302, response.context["adminform"].form.errors
        seller = Seller.load()
        assert (seller.name, seller.iban) == ("Finance Co", "ES9121000418450200051332")
        messages = [str(m) for m in get_messages(response.wsgi_request)]
        assert messages
        assert finance.get(reverse("admin:accounts_seller_add")).status_code == 403


@pytest.mark.django_db
def test_account_admin_refuses_a_bad_vat_id_and_keeps_a_good_one_compact(finance):
    response = finance.post(
        reverse("admin:accounts_account_add"),
        account_form(country_code="DE", vat_code="DE123", is_business="on"),
    )
    assert response.status_code == 200
    assert "vat_code" in response.context["adminform"].form.errors
    response = finance.post(
        reverse("admin:accounts_account_add"),
        account_form(country_code="DE", vat_code="de 136 695 976", is_business="on"),
    )
    assert response.status_code == 302
    account = Account.objects.get(org_name="Acme")
    assert (account.country_code, account.vat_code, account.is_business) == (
        "DE",
        "DE136695976",
        True,
    )
