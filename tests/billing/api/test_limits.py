"""Request limits of /v1: body size (413), content type (415), malformed JSON (400)."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import RequestDataTooBig
from rest_framework.test import APIClient

from billing.api.errors import v1_exception_handler
from invoices.models import Invoice


@pytest.fixture
def client(owner) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {owner.secret}")
    return client


def test_a_body_over_the_limit_is_413_before_anything_reads_it(client, owner, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048
    body = json.dumps({"customer_id": owner.account.pk, "description": "x" * 4000})
    response = client.post("/v1/invoices", body, content_type="application/json")
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "payload_too_large"
    assert "2048 bytes" in error["message"]
    assert not Invoice.objects.exists()


def test_a_declared_length_over_the_limit_is_413(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048
    response = client.post(
        "/v1/invoices", "{}", content_type="application/json", CONTENT_LENGTH="10000000"
    )
    assert response.status_code == 413


def test_a_body_at_the_limit_is_read(client, owner, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048
    body = json.dumps({"customer_id": owner.account.pk, "draft": True})
    response = client.post("/v1/invoices", body, content_type="application/json")
    assert response.status_code == 201


@pytest.mark.parametrize("length", ["abc", "-5"])
def test_a_nonsense_content_length_is_400(client, length):
    response = client.post(
        "/v1/invoices", "{}", content_type="application/json", CONTENT_LENGTH=length
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"


def test_the_limit_only_guards_v1(admin_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048
    # Other paths keep their own handling (Django refuses the body when read).
    response = admin_client.get("/admin/", CONTENT_LENGTH="10000000")
    assert response.status_code == 200


def test_a_too_large_body_found_while_reading_maps_to_413(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4096
    response = v1_exception_handler(RequestDataTooBig("too big"), {})
    assert response.status_code == 413
    assert response.data["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("customer_id=1", "application/x-www-form-urlencoded"),
        ("<invoice/>", "application/xml"),
        ("hello", "text/plain"),
    ],
)
def test_unsupported_content_types_are_415(client, body, content_type):
    response = client.post("/v1/invoices", body, content_type=content_type)
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"
    assert not Invoice.objects.exists()


def test_a_body_without_a_content_type_is_415(client, owner):
    invoice_body = json.dumps({"customer_id": owner.account.pk, "draft": True}).encode()
    response = client.generic("POST", "/v1/invoices", invoice_body, content_type="")
    assert response.status_code == 415


@pytest.mark.parametrize("raw", ["{", '{"a": }', "\xff\xfe", '{"a": 1} trailing'])
def test_malformed_json_is_400(client, raw):
    response = client.post("/v1/invoices", raw.encode("latin-1"), content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"
    assert not Invoice.objects.exists()


def test_deeply_nested_json_is_400_not_500(client):
    raw = "[" * 100_000 + "]" * 100_000
    response = client.post("/v1/invoices", raw, content_type="application/json")
    assert response.status_code == 400
