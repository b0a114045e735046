"""Ids that are not the caller's, and ids that are not ids.

A key limited to one account sends the other account's ids to every endpoint: 404,
nothing of the other account in the answer, nothing changed. A path id that is not
a plain ASCII number in range is 404, never 5xx.
"""

from __future__ import annotations

import json

import pytest

from tests.support.hostile import assert_no_leak, body_text, changed, fingerprint

# (id, method, path, body, api): all with the owner's account-limited key.
FOREIGN = [
    ("api.invoice_read", "GET", "/api/invoices/{other_invoice}.json", None, "3scale"),
    (
        "api.invoice_update",
        "PUT",
        "/api/invoices/{other_invoice}.json",
        {"period": "{month}"},
        "3scale",
    ),
    (
        "api.invoice_state",
        "PUT",
        "/api/invoices/{other_invoice}/state.json",
        {"state": "cancelled"},
        "3scale",
    ),
    ("api.invoice_charge", "POST", "/api/invoices/{other_invoice}/charge.json", None, "3scale"),
    (
        "api.line_item_create",
        "POST",
        "/api/invoices/{other_invoice}/line_items.json",
        {"name": "x", "cost": "1.00"},
        "3scale",
    ),
    ("api.line_items_read", "GET", "/api/invoices/{other_invoice}/line_items.json", None, "3scale"),
    (
        "api.line_item_delete",
        "DELETE",
        "/api/invoices/{other_invoice}/line_items/{other_line}.json",
        None,
        "3scale",
    ),
    (
        "api.line_item_delete_own_invoice",
        "DELETE",
        "/api/invoices/{open}/line_items/{other_line}.json",
        None,
        "3scale",
    ),
    (
        "api.payment_transactions",
        "GET",
        "/api/invoices/{other_invoice}/payment_transactions.json",
        None,
        "3scale",
    ),
    ("api.account_invoices", "GET", "/api/accounts/{other}/invoices.json", None, "3scale"),
    ("admin.account_read", "GET", "/admin/api/accounts/{other}.json", None, "3scale"),
    ("v1.invoice_read", "GET", "/v1/invoices/{other_invoice}", None, "v1"),
    ("v1.invoice_patch", "PATCH", "/v1/invoices/{other_invoice}", {"amount": "1.00"}, "v1"),
    (
        "v1.invoice_put",
        "PUT",
        "/v1/invoices/{other_invoice}",
        {"date": "{today}", "amount": "1.00"},
        "v1",
    ),
    ("v1.invoice_delete", "DELETE", "/v1/invoices/{other_invoice}", None, "v1"),
    ("v1.invoice_issue", "POST", "/v1/invoices/{other_invoice}/issue", {}, "v1"),
    ("v1.invoice_cancel", "POST", "/v1/invoices/{other_invoice}/cancel", {}, "v1"),
    ("v1.invoice_charge", "POST", "/v1/invoices/{other_invoice}/charge", None, "v1"),
    ("v1.invoice_mark_paid", "POST", "/v1/invoices/{other_invoice}/mark_paid", {}, "v1"),
    (
        "v1.usage_report",
        "GET",
        "/v1/usage/report?start_date=2026-01-01&end_date=2026-01-31&account_id={other}",
        None,
        "v1",
    ),
]


def _fill(world, value):
    if isinstance(value, str):
        return world.fill(value)
    if isinstance(value, dict):
        return {k: _fill(world, v) for k, v in value.items()}
    return value


@pytest.mark.parametrize(
    ("name", "method", "path", "body", "api"), FOREIGN, ids=[f[0] for f in FOREIGN]
)
def test_another_accounts_id_is_404_and_leaks_nothing(
    name, method, path, body, api, world, hostile
):
    world.other_invoice.refresh_from_db()
    before = fingerprint()
    response = hostile.send(
        method,
        world.fill(path),
        body=None if body is None else json.dumps(_fill(world, body)).encode(),
        secret=world.owner_secret,
        bearer=api == "v1",
    )
    assert response.status_code == 404, (response.status_code, body_text(response)[:200])
    text = body_text(response)
    assert world.other.org_name not in text
    assert world.other.billing_email not in text
    assert not changed(before, fingerprint())


def test_another_accounts_customer_cannot_be_billed(world, hostile):
    before = fingerprint()
    api = hostile.send(
        "POST",
        "/api/invoices.json",
        body=json.dumps({"account_id": world.other.pk}).encode(),
        secret=world.owner_secret,
    )
    v1 = hostile.send(
        "POST",
        "/v1/invoices",
        body=json.dumps({"customer_id": world.other.pk, "draft": True}).encode(),
        secret=world.owner_secret,
        bearer=True,
    )
    usage = hostile.send(
        "POST",
        "/v1/usage",
        body=json.dumps(
            {
                "id": "foreign-1",
                "account_id": world.other.pk,
                "resource_id": "i-1",
                "service": "EC2",
                "region": "us-west-1",
                "start_time": "2026-01-01T00:00:00Z",
                "end_time": "2026-01-01T01:00:00Z",
                "cost": "1.00",
            }
        ).encode(),
        secret=world.owner_secret,
        bearer=True,
    )
    assert (api.status_code, v1.status_code, usage.status_code) == (422, 400, 400)
    for response in (api, v1, usage):
        assert world.other.org_name not in body_text(response)
    assert not changed(before, fingerprint())


HOSTILE_IDS = {
    "superscript": "%C2%B2",
    "arabic-indic": "%D9%A3",
    "fullwidth": "%EF%BC%93",
    "underscore": "1_000",
    "zero": "0",
    "negative": "-1",
    "exponent": "1e400",
    "digits-10k": "9" * 10_000,
    "int64-overflow": str(2**63),
    "surrogate": "%ED%A0%80",
    "nul": "1%00",
}
ID_PATHS = [
    ("api.invoice_read", "GET", "/api/invoices/{id}.json", "3scale"),
    ("api.invoice_update", "PUT", "/api/invoices/{id}.json", "3scale"),
    ("api.line_item_delete", "DELETE", "/api/invoices/{open}/line_items/{id}.json", "3scale"),
    ("admin.account_update", "PUT", "/admin/api/accounts/{id}.json", "3scale"),
    ("v1.invoice_read", "GET", "/v1/invoices/{id}", "v1"),
    ("v1.invoice_patch", "PATCH", "/v1/invoices/{id}", "v1"),
    ("v1.invoice_issue", "POST", "/v1/invoices/{id}/issue", "v1"),
]
ID_CASES = [(p, i) for p in ID_PATHS for i in HOSTILE_IDS]


@pytest.mark.parametrize(
    ("route", "hostile_id"), ID_CASES, ids=[f"{p[0]}={i}" for p, i in ID_CASES]
)
def test_a_path_id_that_is_not_an_id_is_404(route, hostile_id, world, hostile):
    _name, method, path, api = route
    before = fingerprint()
    url = path.replace("{id}", HOSTILE_IDS[hostile_id]).format(**world.ids)
    body = None if method in ("GET", "DELETE") else b"{}"
    secret = world.provider_secret if "accounts" in path else world.owner_secret
    response = hostile.send(method, url, body=body, secret=secret, bearer=api == "v1")
    assert response.status_code == 404, (response.status_code, body_text(response)[:200])
    assert_no_leak(response)
    assert not changed(before, fingerprint())
