"""3scale's Account Management API under /admin/api: signup, list, read, update, delete."""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts.models import Account
from invoices.models import Invoice
from tests.factories import AccountFactory, make_invoice
from tests.support.threescale import (
    XML_DECLARATION,
    parse_xml,
    send_form,
    send_json,
    tags,
    url,
)

ACCOUNT_KEYS = [
    "id", "created_at", "updated_at", "state", "org_name", "billing_email", "vat_code",
    "vat_rate", "currency", "payment_terms_days", "payment_method", "credit_card_stored",
    "credit_card_partial_number", "billing_address", "links",
]  # fmt: skip


@pytest.fixture
def key(admin_key) -> str:
    return admin_key[1]


@pytest.mark.django_db
class TestSignup:
    def test_json_signup(self, client, key):
        response = send_json(
            client,
            "post",
            "/admin/api/signup.json",
            key,
            {
                "org_name": "Dev Co",
                "username": "dev",
                "email": "billing@dev.test",
                "vat_rate": "21.5",
                "currency": "eur",
                "billing_address": {"address1": "1 Main St", "city": "Barcelona"},
            },
        )

        assert response.status_code == 201
        data = response.json()["account"]
        assert list(data) == [k for k in ACCOUNT_KEYS if k in data]
        assert data["org_name"] == "Dev Co"
        assert data["billing_email"] == "billing@dev.test"
        assert data["vat_rate"] == 21.5
        assert data["currency"] == "EUR"
        assert data["state"] == "active"
        assert data["credit_card_stored"] is False
        assert data["billing_address"] == {
            "company": "Dev Co",
            "address1": "1 Main St",
            "city": "Barcelona",
        }
        assert data["links"][0]["href"] == f"http://testserver/admin/api/accounts/{data['id']}"
        account = Account.objects.get(pk=data["id"])
        assert account.vat_rate == Decimal("21.5")
        assert account.address_line1 == "1 Main St"

    def test_form_signup_xml(self, client, key):
        response = send_form(
            client, "post", "/admin/api/signup.xml", key, {"org_name": "Form & Co", "zip": "08001"}
        )
        assert response.status_code == 201
        root = parse_xml(response)
        assert root.tag == "account"
        assert root.findtext("org_name") == "Form & Co"
        assert root.findtext("billing_address/zip") == "08001"
        assert b"<vat_rate/>" in response.content

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({}, "org_name"),
            ({"org_name": "  "}, "org_name"),
            ({"org_name": "X", "email": "not-an-email"}, "billing_email"),
            ({"org_name": "X", "vat_rate": "abc"}, "vat_rate"),
            ({"org_name": "X", "vat_rate": "150"}, "vat_rate"),
            ({"org_name": "X", "currency": "XXX"}, "currency"),
            ({"org_name": "X", "payment_terms_days": "soon"}, "payment_terms_days"),
            ({"org_name": "X", "payment_terms_days": "1.5"}, "payment_terms_days"),
            ({"org_name": "X", "payment_terms_days": "999"}, "payment_terms_days"),
            ({"org_name": "X", "payment_method": "cash"}, "payment_method"),
            ({"org_name": "X" * 300}, "org_name"),
        ],
    )
    def test_bad_input_is_422_naming_the_field(self, client, key, body, field):
        response = send_json(client, "post", "/admin/api/signup.json", key, body)
        assert response.status_code == 422
        assert field in response.json()["errors"]
        assert not Account.objects.exclude(org_name__in=["Owner Inc", "Other Ltd"]).exists()

    def test_malformed_json_is_400(self, client, key):
        response = client.post(
            url("/admin/api/signup.json", key), data="{", content_type="application/json"
        )
        assert response.status_code == 400

    def test_account_key_or_read_key_cannot_sign_up(self, client, owner, read_key):
        for raw in (owner.secret, read_key[1]):
            response = send_json(client, "post", "/admin/api/signup.json", raw, {"org_name": "X"})
            assert response.status_code == 403
            assert response.json() == {
                "error": "Your access token does not have the correct permissions"
            }

    def test_no_key(self, client):
        response = send_json(client, "post", "/admin/api/signup.xml", None, {"org_name": "X"})
        assert response.status_code == 403
        assert response.content == XML_DECLARATION + b"<error>Access denied</error>"


@pytest.mark.django_db
class TestListAndRead:
    def test_list_is_wrapped_per_item(self, client, owner, other, key):
        response = client.get(url("/admin/api/accounts.json", key))
        assert response.status_code == 200
        data = response.json()
        assert list(data) == ["accounts"]
        # By id, as 3scale lists them.
        assert [item["account"]["org_name"] for item in data["accounts"]] == [
            "Owner Inc",
            "Other Ltd",
        ]

    def test_list_pagination_and_xml(self, client, key):
        for index in range(3):
            AccountFactory(org_name=f"Org {index}")
        data = client.get(url("/admin/api/accounts.json", key, per_page=2, page=2)).json()
        assert [item["account"]["org_name"] for item in data["accounts"]] == ["Org 2"]
        assert data["metadata"] == {
            "per_page": 2,
            "total_entries": 3,
            "total_pages": 2,
            "current_page": 2,
        }
        root = parse_xml(client.get(url("/admin/api/accounts.xml", key)))
        assert root.tag == "accounts"
        assert tags(root) == ["account"] * 3

    def test_list_needs_a_provider_wide_key(self, client, owner):
        response = client.get(url("/admin/api/accounts.json", owner.secret))
        assert response.status_code == 403

    def test_read_own_account_with_account_key(self, client, owner, other):
        response = client.get(url(f"/admin/api/accounts/{owner.account.pk}.json", owner.secret))
        assert response.status_code == 200
        assert response.json()["account"]["id"] == owner.account.pk
        response = client.get(url(f"/admin/api/accounts/{other.account.pk}.json", owner.secret))
        assert (response.status_code, response.json()) == (404, {"status": "Not found"})

    def test_read_xml_element_order(self, client, owner, key):
        root = parse_xml(client.get(url(f"/admin/api/accounts/{owner.account.pk}.xml", key)))
        assert tags(root) == [k for k in ACCOUNT_KEYS if k != "links"]

    @pytest.mark.parametrize("account_id", ["999999", "abc"])
    def test_unknown(self, client, key, account_id):
        response = client.get(url(f"/admin/api/accounts/{account_id}.json", key))
        assert response.status_code == 404


@pytest.mark.django_db
class TestUpdateAndDelete:
    def test_update(self, client, owner, key):
        response = send_json(
            client,
            "put",
            f"/admin/api/accounts/{owner.account.pk}.json",
            key,
            {"org_name": "Renamed", "vat_rate": "", "billing_address": {"country": "Spain"}},
        )
        assert response.status_code == 200
        owner.account.refresh_from_db()
        assert (owner.account.org_name, owner.account.vat_rate, owner.account.country) == (
            "Renamed",
            None,
            "Spain",
        )

    def test_update_bad_input(self, client, owner, key):
        response = send_json(
            client,
            "put",
            f"/admin/api/accounts/{owner.account.pk}.json",
            key,
            {"org_name": "", "currency": "EUR"},
        )
        assert response.status_code == 422
        owner.account.refresh_from_db()
        assert owner.account.currency == "USD"

    def test_account_key_cannot_update_or_delete_itself(self, client, owner):
        path = f"/admin/api/accounts/{owner.account.pk}.json"
        assert send_json(client, "put", path, owner.secret, {"org_name": "X"}).status_code == 403
        assert client.delete(url(path, owner.secret)).status_code == 403

    def test_delete_is_soft(self, client, owner, key):
        invoice = make_invoice(account=owner.account, state=Invoice.State.PENDING)
        path = f"/admin/api/accounts/{owner.account.pk}.json"

        response = client.delete(url(path, key))

        assert response.status_code == 200
        assert response.content == b""
        assert client.get(url(path, key)).status_code == 404
        assert client.delete(url(path, key)).status_code == 404
        owner.account.refresh_from_db()
        assert owner.account.state == Account.State.DELETED
        body = client.get(url(f"/api/invoices/{invoice.pk}.xml", key)).content
        assert (
            f"<buyer><id>{owner.account.pk}</id><status>deleted</status></buyer>".encode() in body
        )
        # Its own key stopped working with it.
        assert client.get(url("/api/invoices.json", owner.secret)).status_code == 403

    def test_deleted_account_cannot_be_billed(self, client, owner, key):
        client.delete(url(f"/admin/api/accounts/{owner.account.pk}.json", key))
        response = send_json(
            client, "post", "/api/invoices.json", key, {"account_id": owner.account.pk}
        )
        assert response.status_code == 422
        assert list(response.json()["errors"]) == ["buyer_account"]


@pytest.mark.django_db
class TestTaxFields:
    def test_tax_fields_are_written_and_shown_only_when_set(self, client, owner, key):
        path = f"/admin/api/accounts/{owner.account.pk}"
        body = {
            "country_code": "es",
            "vat_code": "esb 58378431",
            "is_business": "false",
            "tax_exempt": "true",
            "tax_exempt_reason": "Article 132",
        }
        response = send_json(client, "put", f"{path}.json", key, body)
        assert response.status_code == 200
        data = response.json()["account"]
        assert (data["country_code"], data["vat_code"], data["is_business"]) == (
            "ES",
            "ESB58378431",
            False,
        )
        assert (data["tax_exempt"], data["tax_exempt_reason"]) == (True, "Article 132")
        root = parse_xml(client.get(url(f"{path}.xml", key)))
        assert (root.findtext("country_code"), root.findtext("tax_exempt")) == ("ES", "true")

    def test_an_account_without_them_has_3scales_keys_only(self, client, owner, key):
        response = client.get(url(f"/admin/api/accounts/{owner.account.pk}.json", key))
        assert set(response.json()["account"]) <= set(ACCOUNT_KEYS)

    @pytest.mark.parametrize(
        "body",
        [
            {"vat_code": "DE123"},
            {"country_code": "XX"},
            {"tax_exempt": "true"},
            {"tax_exempt": "maybe", "tax_exempt_reason": "x"},
        ],
    )
    def test_bad_tax_fields_are_refused(self, client, owner, key, body):
        path = f"/admin/api/accounts/{owner.account.pk}.json"
        assert send_json(client, "put", path, key, body).status_code == 422


class TestFind:
    def test_finds_by_billing_email_in_any_case(self, client, key):
        account = AccountFactory(org_name="Findable", billing_email="ap@findable.test")
        response = client.get(url("/admin/api/accounts/find.json", key, email="AP@findable.test"))
        assert response.status_code == 200
        assert response.json()["account"]["id"] == account.pk

    @pytest.mark.parametrize("params", [{}, {"email": "nobody@x.test"}, {"username": "ap"}])
    def test_nothing_found_is_404(self, client, key, params):
        AccountFactory(billing_email="ap@findable.test")
        response = client.get(url("/admin/api/accounts/find.json", key, **params))
        assert response.status_code == 404
        assert response.json() == {"status": "Not found"}
