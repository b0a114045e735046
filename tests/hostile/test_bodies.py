"""Whole hostile bodies on every write endpoint: deep nesting (with and without a key),
bad encoding, 17 MiB, and chunked transfer encoding.

A body that cannot be read is refused as a whole (4xx, no field needed), never a
5xx, never a traceback in the log, and the database is left as it was.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.test.client import FakePayload

from invoices.models import Invoice, InvoiceEvent, PaymentTransaction
from tests.support.hostile import assert_no_leak, body_text, changed, fingerprint


@dataclass(frozen=True)
class Endpoint:
    id: str
    api: str
    method: str
    path: str
    key: str = "owner"

    def secret(self, world) -> str:
        return world.provider_secret if self.key == "provider" else world.owner_secret


WRITE_ENDPOINTS = [
    Endpoint("api.invoice_create.json", "3scale", "POST", "/api/invoices.json"),
    Endpoint("api.invoice_create.xml", "3scale", "POST", "/api/invoices.xml"),
    Endpoint("api.invoice_update", "3scale", "PUT", "/api/invoices/{open}.json"),
    Endpoint("api.invoice_state", "3scale", "PUT", "/api/invoices/{open}/state.json"),
    Endpoint("api.invoice_charge", "3scale", "POST", "/api/invoices/{pending}/charge.json"),
    Endpoint("api.line_item_create", "3scale", "POST", "/api/invoices/{open}/line_items.json"),
    Endpoint(
        "api.line_item_delete", "3scale", "DELETE", "/api/invoices/{open}/line_items/{line}.json"
    ),
    Endpoint("admin.signup", "3scale", "POST", "/admin/api/signup.json", key="provider"),
    Endpoint(
        "admin.account_update", "3scale", "PUT", "/admin/api/accounts/{owner}.json", "provider"
    ),
    Endpoint("v1.invoice_create", "v1", "POST", "/v1/invoices"),
    Endpoint("v1.invoice_patch", "v1", "PATCH", "/v1/invoices/{open}"),
    Endpoint("v1.invoice_put", "v1", "PUT", "/v1/invoices/{open}"),
    Endpoint("v1.invoice_delete", "v1", "DELETE", "/v1/invoices/{open}"),
    Endpoint("v1.invoice_issue", "v1", "POST", "/v1/invoices/{open}/issue"),
    Endpoint("v1.invoice_cancel", "v1", "POST", "/v1/invoices/{open}/cancel"),
    Endpoint("v1.invoice_charge", "v1", "POST", "/v1/invoices/{pending}/charge"),
    Endpoint("v1.invoice_mark_paid", "v1", "POST", "/v1/invoices/{pending}/mark_paid"),
    Endpoint("v1.usage_ingest", "v1", "POST", "/v1/usage"),
    Endpoint("v1.usage_report", "v1", "POST", "/v1/usage/report"),
]
# These take no body and answer without reading one (3scale's charge, the DELETEs): with
# a key, what they are sent does not matter; without one, they must still answer 4xx.
BODYLESS = {"api.invoice_charge", "api.line_item_delete", "v1.invoice_delete"}
BODY_ENDPOINTS = [e for e in WRITE_ENDPOINTS if e.id not in BODYLESS]

DEEP = {
    "arrays-5000": b"[" * 5000 + b"]" * 5000,
    "objects-3000": b'{"a":' * 3000 + b"1" + b"}" * 3000,
}
BAD_ENCODING = {
    "latin-1-bytes": b'{"name": "\xff\xfe", "org_name": "\xe9"}',
    "utf-16": '{"name": "x"}'.encode("utf-16"),
    "truncated-utf-8": b'{"name": "\xe2\x82"}',
}
MIB = 1024 * 1024


def _send(hostile, world, endpoint, body, *, with_key: bool = True, **extra):
    return hostile.send(
        endpoint.method,
        world.fill(endpoint.path),
        body=body,
        secret=endpoint.secret(world) if with_key else None,
        bearer=endpoint.api == "v1",
        **extra,
    )


def _no_tracebacks(caplog) -> None:
    loud = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not loud, f"logged: {loud[0].getMessage()[:200]}"


DEEP_CASES = [
    (endpoint, shape, with_key)
    for endpoint in WRITE_ENDPOINTS
    for shape in DEEP
    for with_key in (True, False)
    if not (with_key and endpoint.id in BODYLESS)
]


@pytest.mark.parametrize(
    ("endpoint", "shape", "with_key"),
    DEEP_CASES,
    ids=[f"{e.id}-{shape}-{'key' if k else 'anonymous'}" for e, shape, k in DEEP_CASES],
)
def test_deeply_nested_body_is_4xx(endpoint, shape, with_key, world, hostile, caplog):
    caplog.set_level(logging.DEBUG)
    before = fingerprint()
    response = _send(hostile, world, endpoint, DEEP[shape], with_key=with_key)
    assert 400 <= response.status_code < 500, (response.status_code, body_text(response)[:200])
    assert_no_leak(response)
    assert not changed(before, fingerprint())
    _no_tracebacks(caplog)


@pytest.mark.parametrize("encoding", list(BAD_ENCODING))
@pytest.mark.parametrize("endpoint", BODY_ENDPOINTS, ids=lambda e: e.id)
def test_badly_encoded_body_is_400(endpoint, encoding, world, hostile, caplog):
    caplog.set_level(logging.DEBUG)
    before = fingerprint()
    response = _send(hostile, world, endpoint, BAD_ENCODING[encoding])
    assert response.status_code == 400, (response.status_code, body_text(response)[:200])
    assert_no_leak(response)
    assert not changed(before, fingerprint())
    _no_tracebacks(caplog)


OVERSIZED = [
    Endpoint("api.line_item_create", "3scale", "POST", "/api/invoices/{open}/line_items.json"),
    Endpoint("api.invoice_create", "3scale", "POST", "/api/invoices.json"),
    Endpoint("admin.signup", "3scale", "POST", "/admin/api/signup.json", key="provider"),
    Endpoint(
        "admin.account_update", "3scale", "PUT", "/admin/api/accounts/{owner}.json", "provider"
    ),
    Endpoint("v1.invoice_create", "v1", "POST", "/v1/invoices"),
    Endpoint("v1.usage_ingest", "v1", "POST", "/v1/usage"),
]


@pytest.mark.parametrize("endpoint", OVERSIZED, ids=lambda e: e.id)
def test_a_17_mib_body_is_413(endpoint, world, hostile, settings):
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE == 16 * MIB  # MAX_REQUEST_BYTES' default
    filler = "x" * (17 * MIB)
    body = json.dumps(
        {
            "account_id": world.owner.pk,
            "customer_id": world.owner.pk,
            "org_name": filler,
            "name": filler,
            "cost": "1.00",
            "description": filler,
            "draft": True,
        }
    ).encode()
    before = fingerprint()
    response = _send(hostile, world, endpoint, body)
    assert response.status_code == 413, (response.status_code, body_text(response)[:200])
    assert not changed(before, fingerprint())


# --- chunked bodies -------------------------------------------------------------------------
# Behind gunicorn a chunked request reaches Django de-chunked, with
# `Transfer-Encoding: chunked` and no Content-Length; the environ below is that.


def _chunked_environ(world, endpoint: Endpoint, payload: dict) -> dict:
    path = world.fill(endpoint.path)
    environ = {
        "REQUEST_METHOD": endpoint.method,
        "PATH_INFO": path,
        "CONTENT_TYPE": "application/json",
        "HTTP_TRANSFER_ENCODING": "chunked",
        "wsgi.input_terminated": True,  # gunicorn's promise that the input ends with the body
        "wsgi.input": FakePayload(json.dumps(payload).encode()),
    }
    if endpoint.api == "v1":
        environ["HTTP_AUTHORIZATION"] = f"Bearer {endpoint.secret(world)}"
    else:
        environ["QUERY_STRING"] = f"access_token={endpoint.secret(world)}"
    return environ


def _due(world) -> str:
    return (dt.date.fromisoformat(world.ids["today"]) + dt.timedelta(days=10)).isoformat()


def _issue_used_body(world, response) -> bool:
    invoice = Invoice.objects.get(pk=world.open_invoice.pk)
    return invoice.due_on is not None and invoice.due_on.isoformat() == _due(world)


def _mark_paid_used_body(world, response) -> bool:
    payment = PaymentTransaction.objects.filter(invoice=world.pending_invoice, success=True).get()
    return payment.method == "other" and payment.reference == "WIRE-42"


def _cancel_used_body(world, response) -> bool:
    event = InvoiceEvent.objects.filter(invoice=world.open_invoice, to_state="cancelled").get()
    return event.reason == "sent in chunks"


def _line_used_body(world, response) -> bool:
    line = world.open_invoice.line_items.order_by("-id").first()
    return line.name == "Chunked line" and line.cost == Decimal("7.00")


def _signup_used_body(world, response) -> bool:
    return "Chunked Inc" in body_text(response)


CHUNKED = [
    (
        Endpoint("v1.invoice_issue", "v1", "POST", "/v1/invoices/{open}/issue"),
        lambda world: {"due_date": _due(world)},
        _issue_used_body,
    ),
    (
        Endpoint("v1.invoice_mark_paid", "v1", "POST", "/v1/invoices/{pending}/mark_paid"),
        lambda world: {"method": "other", "reference": "WIRE-42"},
        _mark_paid_used_body,
    ),
    (
        Endpoint("v1.invoice_cancel", "v1", "POST", "/v1/invoices/{open}/cancel"),
        lambda world: {"reason": "sent in chunks"},
        _cancel_used_body,
    ),
    (
        Endpoint("api.line_item_create", "3scale", "POST", "/api/invoices/{open}/line_items.json"),
        lambda world: {"name": "Chunked line", "cost": "7.00", "quantity": "1"},
        _line_used_body,
    ),
    (
        Endpoint("admin.signup", "3scale", "POST", "/admin/api/signup.json", key="provider"),
        lambda world: {"org_name": "Chunked Inc"},
        _signup_used_body,
    ),
]


@pytest.mark.parametrize(
    ("endpoint", "payload", "used_body"), CHUNKED, ids=[c[0].id for c in CHUNKED]
)
def test_a_chunked_body_is_read_or_refused_with_411(endpoint, payload, used_body, world, hostile):
    before = fingerprint()
    response = hostile.send_environ(_chunked_environ(world, endpoint, payload(world)))
    status = response.status_code
    assert status < 500, body_text(response)[:200]
    if status >= 400:
        # Refused: 411 says why; nothing may have happened.
        assert status == 411, (status, body_text(response)[:200])
        assert not changed(before, fingerprint())
    else:
        assert used_body(world, response), "acted on the request without its body"
