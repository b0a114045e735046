"""The one request-body reader: size, framing, depth and encoding limits on both APIs."""

from __future__ import annotations

import json
import logging

import pytest
from rest_framework.test import APIClient

from accounts.models import Account
from invoices.models import Invoice, InvoiceEvent, LineItem
from tests.factories import make_invoice

DEEP_ARRAY = "[" * 5000 + "]" * 5000
DEEP_OBJECT = '{"a":' * 3000 + "1" + "}" * 3000
JUST_TOO_DEEP = "[" * 33 + "]" * 33


def fingerprint() -> tuple[int, ...]:
    return (
        Account.objects.count(),
        Invoice.objects.count(),
        LineItem.objects.count(),
        InvoiceEvent.objects.count(),
    )


def threescale_writes(invoice_id: int, account_id: int) -> list[tuple[str, str]]:
    return [
        ("post", "/api/invoices.json"),
        ("post", f"/api/invoices/{invoice_id}/line_items.json"),
        ("put", f"/api/invoices/{invoice_id}.json"),
        ("post", "/admin/api/signup.json"),
        ("put", f"/admin/api/accounts/{account_id}.json"),
    ]


@pytest.fixture
def invoice(owner):
    return make_invoice(account=owner.account)


@pytest.mark.parametrize("body", [DEEP_ARRAY, DEEP_OBJECT])
def test_a_deep_body_without_a_key_is_403_and_logs_no_traceback(invoice, owner, body, caplog):
    before = fingerprint()
    client = APIClient()
    with caplog.at_level(logging.WARNING):
        for method, path in threescale_writes(invoice.pk, owner.account.pk):
            response = getattr(client, method)(path, data=body, content_type="application/json")
            assert response.status_code == 403, (path, response.content)
            assert response.json() == {"error": "Access denied"}
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert fingerprint() == before


@pytest.mark.parametrize("body", [DEEP_ARRAY, DEEP_OBJECT, JUST_TOO_DEEP])
def test_a_deep_body_with_a_key_is_400(invoice, owner, admin_key, body):
    before = fingerprint()
    client = APIClient()
    for method, path in threescale_writes(invoice.pk, owner.account.pk):
        response = getattr(client, method)(
            f"{path}?access_token={admin_key[1]}", data=body, content_type="application/json"
        )
        assert response.status_code == 400, (path, response.content)
        assert "nested deeper than 32 levels" in response.json()["error"]
    v1 = APIClient()
    v1.credentials(HTTP_AUTHORIZATION=f"Bearer {owner.secret}")
    response = v1.post("/v1/invoices", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"
    assert fingerprint() == before


def test_a_document_within_the_depth_limit_is_read(invoice, admin_key):
    body = {"line_item": {"name": "Deep enough", "cost": "1.00", "quantity": "1"}}
    response = APIClient().post(
        f"/api/invoices/{invoice.pk}/line_items.json?access_token={admin_key[1]}",
        data=json.dumps(body),
        content_type="application/json",
    )
    assert response.status_code == 201, response.content


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/api/invoices/{invoice}/line_items.json", "application/json"),
        ("/api/invoices/{invoice}/line_items.xml", "application/json"),
        ("/admin/api/signup.json", "application/json"),
        ("/admin/api/signup.json", "application/x-www-form-urlencoded"),
    ],
)
def test_the_size_limit_holds_on_the_3scale_api(invoice, admin_key, settings, path, content_type):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048
    before = fingerprint()
    if content_type == "application/json":
        body = json.dumps({"name": "x" * 4000, "org_name": "x" * 4000, "cost": "1"})
    else:
        body = "org_name=" + "x" * 4000
    response = APIClient().post(
        path.format(invoice=invoice.pk) + f"?access_token={admin_key[1]}",
        data=body,
        content_type=content_type,
    )
    assert response.status_code == 413
    assert b"larger than the limit of 2048 bytes" in response.content
    if path.endswith(".json"):
        assert "2048" in response.json()["error"]
    assert fingerprint() == before


def test_the_size_limit_holds_on_v1(owner, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {owner.secret}")
    response = client.post(
        "/v1/invoices", data=json.dumps({"x": "y" * 4000}), content_type="application/json"
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize("action", ["issue", "mark_paid", "cancel"])
def test_a_chunked_body_on_v1_is_refused_and_nothing_happens(owner, invoice, action):
    before = fingerprint()
    state = invoice.state
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {owner.secret}")
    response = client.post(
        f"/v1/invoices/{invoice.pk}/{action}",
        data=json.dumps({"date": "2000-01-01"}),
        content_type="application/json",
        HTTP_TRANSFER_ENCODING="chunked",
    )
    assert response.status_code == 411
    assert response.json()["error"]["code"] == "length_required"
    invoice.refresh_from_db()
    assert invoice.state == state
    assert fingerprint() == before


def test_a_chunked_body_on_the_3scale_api_is_refused(invoice, admin_key):
    before = fingerprint()
    response = APIClient().post(
        f"/api/invoices/{invoice.pk}/line_items.xml?access_token={admin_key[1]}",
        data=json.dumps({"name": "x", "cost": "1"}),
        content_type="application/json",
        HTTP_TRANSFER_ENCODING="Chunked",
    )
    assert response.status_code == 411
    assert b"<error>Send the body with a Content-Length" in response.content
    assert fingerprint() == before


@pytest.mark.parametrize("length", ["abc", "-1", "²", "9" * 5000])
def test_a_bad_content_length_is_400(invoice, admin_key, length):
    response = APIClient().post(
        f"/api/invoices/{invoice.pk}/line_items.json?access_token={admin_key[1]}",
        data="{}",
        content_type="application/json",
        CONTENT_LENGTH=length,
    )
    assert response.status_code == 400
    assert "Content-Length" in response.json()["error"]


def test_a_body_that_is_not_utf8_is_400(invoice, admin_key):
    response = APIClient().post(
        f"/api/invoices/{invoice.pk}/line_items.json?access_token={admin_key[1]}",
        data=b'{"name": "\xff"}',
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "UTF-8" in response.json()["error"]
