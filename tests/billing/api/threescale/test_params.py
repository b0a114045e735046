"""Hostile text and numbers in 3scale parameters: a 422 naming the field, nothing written."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from rest_framework.test import APIClient

from accounts.models import Account
from invoices.models import Invoice, InvoiceEvent, LineItem
from tests.factories import make_invoice

SURROGATE = "\ud800"
NUL = "a\x00b"
ACCOUNT_FIELDS = ["org_name", "vat_code", "address_line1", "city", "zip", "country", "phone"]


def fingerprint() -> tuple:
    return (
        list(Account.objects.order_by("pk").values()),
        Invoice.objects.count(),
        list(LineItem.objects.order_by("pk").values()),
        InvoiceEvent.objects.count(),
    )


def post_json(path: str, key: str, body: dict, method: str = "post"):
    return getattr(APIClient(), method)(
        f"{path}?access_token={key}", data=json.dumps(body), content_type="application/json"
    )


@pytest.fixture
def invoice(owner):
    return make_invoice(account=owner.account)


@pytest.mark.parametrize("field", ["name", "description"])
@pytest.mark.parametrize("value", [SURROGATE, f"ok{SURROGATE}ok", NUL])
@pytest.mark.parametrize("wrapped", [False, True])
def test_line_item_text_that_cannot_be_stored_is_422(invoice, admin_key, field, value, wrapped):
    before = fingerprint()
    attributes = {"name": "Fee", "description": "d", "cost": "1.00", "quantity": "1"}
    attributes[field] = value
    body = {"line_item": attributes} if wrapped else attributes
    response = post_json(f"/api/invoices/{invoice.pk}/line_items.json", admin_key[1], body)
    assert response.status_code == 422, response.content
    errors = response.json()["errors"]
    assert list(errors) == [field]
    assert "NUL" in errors[field][0] or "surrogate" in errors[field][0]
    assert fingerprint() == before


def test_a_nul_in_a_form_line_item_is_422_in_xml(invoice, admin_key):
    before = fingerprint()
    response = APIClient().post(
        f"/api/invoices/{invoice.pk}/line_items.xml?access_token={admin_key[1]}",
        data=urlencode({"name": NUL, "cost": "1"}),
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 422
    assert b"<errors><error>Name contains a NUL character</error></errors>" in response.content
    assert fingerprint() == before


@pytest.mark.parametrize("field", ACCOUNT_FIELDS)
@pytest.mark.parametrize("value", [SURROGATE, NUL])
def test_account_text_that_cannot_be_stored_is_422(owner, admin_key, field, value):
    before = fingerprint()
    response = post_json(
        f"/admin/api/accounts/{owner.account.pk}.json", admin_key[1], {field: value}, "put"
    )
    assert response.status_code == 422, response.content
    assert field in response.json()["errors"]
    assert fingerprint() == before


@pytest.mark.parametrize("field", ["org_name", "vat_code", "city", "phone", "username"])
def test_signup_text_that_cannot_be_stored_is_422(admin_key, field):
    before = fingerprint()
    body = {"org_name": "New Co", field: f"x{SURROGATE}"}
    response = post_json("/admin/api/signup.json", admin_key[1], body)
    assert response.status_code == 422, response.content
    assert field in response.json()["errors"]
    assert fingerprint() == before


def test_signup_with_a_surrogate_in_the_billing_address_names_the_field(admin_key):
    before = fingerprint()
    body = {"org_name": "New Co", "billing_address": {"city": SURROGATE}}
    response = post_json("/admin/api/signup.json", admin_key[1], body)
    assert response.status_code == 422
    assert response.json() == {
        "errors": {"city": ["contains an invalid character (a lone UTF-16 surrogate)"]}
    }
    assert fingerprint() == before


@pytest.mark.parametrize("value", ["²", "١٢", "1_000", "9" * 5000])
def test_numbers_are_ascii_digits_only(invoice, admin_key, value):
    before = fingerprint()
    response = post_json(
        f"/api/invoices/{invoice.pk}/line_items.json",
        admin_key[1],
        {"name": "Fee", "cost": value, "quantity": "1"},
    )
    assert response.status_code == 422, response.content
    assert response.json() == {"errors": {"cost": ["is not a number"]}}
    body = response.content.decode()
    assert "int_max_str_digits" not in body and "invalid literal" not in body
    assert fingerprint() == before


@pytest.mark.parametrize("value", ["²", "١", "1_0", "9" * 5000])
def test_ids_are_ascii_digits_only(owner, admin_key, value):
    before = fingerprint()
    response = post_json(
        "/api/invoices.json", admin_key[1], {"account_id": value, "period": "2026-01"}
    )
    assert response.status_code == 422, response.content
    # No account has that id: 3scale's answer for an unknown buyer.
    assert response.json() == {"errors": {"buyer_account": ["can't be blank"]}}
    assert fingerprint() == before


@pytest.mark.parametrize("segment", ["²", "١", "1_0", "9" * 5000])
def test_path_ids_that_are_not_ascii_digits_are_404(admin_key, segment):
    response = APIClient().get(f"/api/invoices/{segment}.json?access_token={admin_key[1]}")
    assert response.status_code == 404
    assert response.json() == {"status": "Not found"}
