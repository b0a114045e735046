"""The JSON body parser: text that cannot be stored and huge numbers are field errors."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from rest_framework.test import APIClient

from invoices.models import Invoice, InvoiceEvent, LineItem
from tests.factories import make_invoice


def counts() -> tuple[int, int, int]:
    return Invoice.objects.count(), LineItem.objects.count(), InvoiceEvent.objects.count()


@pytest.mark.parametrize("value", ["\ud800", "a\x00b", "x\udc00"])
def test_v1_text_that_cannot_be_stored_is_400_naming_the_field(owner, value):
    today = dt.date.today().isoformat()
    body = {
        "customer_id": owner.account.pk,
        "date": today,
        "due_date": today,
        "line_items": [
            {"description": "Fee", "quantity": 1, "unit_price": 1},
            {"description": value},
        ],
    }
    before = counts()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {owner.secret}")
    response = client.post("/v1/invoices", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert list(error["details"]) == ["line_items[1].description"]
    assert counts() == before


def test_v1_usage_report_filters_with_a_surrogate_are_400(owner):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {owner.secret}")
    body = {"start_date": "2026-01-01", "end_date": "2026-01-31", "filters": {"region": "\ud800"}}
    response = client.post(
        "/v1/usage/report", data=json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 400, response.content
    assert "filters.region" in response.json()["error"]["details"]


def test_a_field_name_that_cannot_be_stored_is_400(owner):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {owner.secret}")
    before = counts()
    response = client.post("/v1/invoices", data='{"\\ud800": 1}', content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert counts() == before


@pytest.mark.parametrize("digits", [70, 5000])
def test_a_huge_integer_is_a_field_error_without_python_internals(owner, digits):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {owner.secret}")
    before = counts()
    raw = '{"customer_id": ' + "9" * digits + ', "amount": ' + "9" * digits + "}"
    response = client.post("/v1/invoices", data=raw, content_type="application/json")
    assert response.status_code == 400, response.content
    details = response.json()["error"]["details"]
    assert "customer_id" in details and "amount" in details
    text = response.content.decode()
    assert "int_max_str_digits" not in text and "invalid literal" not in text
    assert counts() == before


def test_a_huge_integer_in_a_3scale_body_is_a_field_error(owner, admin_key):
    invoice = make_invoice(account=owner.account)
    before = counts()
    raw = '{"name": "Fee", "cost": ' + "9" * 5000 + "}"
    response = APIClient().post(
        f"/api/invoices/{invoice.pk}/line_items.json?access_token={admin_key[1]}",
        data=raw,
        content_type="application/json",
    )
    assert response.status_code == 422, response.content
    assert list(response.json()["errors"]) == ["cost"]
    assert "int_max_str_digits" not in response.content.decode()
    assert counts() == before
