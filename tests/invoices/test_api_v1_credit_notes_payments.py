"""/v1 credit notes and recorded payments: shapes, account limits, hostile bodies."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.selectors import account_credit_balance
from invoices import services
from invoices.models import CreditNote, Invoice, InvoiceCounter, PaymentTransaction
from tests.factories import make_invoice

S = Invoice.State
D = Decimal
pytestmark = pytest.mark.django_db
TODAY = dt.date.today().isoformat()


def client_for(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def post(client: APIClient, path: str, body) -> Any:
    return client.post(path, data=json.dumps(body), content_type="application/json")


def test_invoice_shows_paid_credited_and_due(owner):
    invoice = make_invoice(account=owner.account, state=S.UNPAID)
    client = client_for(owner.secret)
    body = client.get(f"/v1/invoices/{invoice.pk}").json()
    assert (body["amount_paid"], body["amount_credited"], body["credit_applied"]) == (0, 0, 0)
    assert body["amount_due"] == 100

    answer = post(
        client,
        f"/v1/invoices/{invoice.pk}/payments",
        {"amount": "40.00", "date": TODAY, "method": "cheque", "reference": "CHQ 1"},
    )
    assert answer.status_code == 201, answer.content
    assert (answer.json()["amount_paid"], answer.json()["amount_due"]) == (40, 60)
    assert answer.json()["status"] == "unpaid"

    answer = post(
        client,
        f"/v1/invoices/{invoice.pk}/payments",
        {"amount": 60, "date": TODAY, "method": "other"},
    )
    assert (answer.json()["status"], answer.json()["amount_due"]) == ("paid", 0)


def test_credit_note_create_list_and_get(owner, other):
    invoice = make_invoice(account=owner.account, lines=[("2", "50.00")], state=S.PENDING)
    line = invoice.line_items.get()
    client = client_for(owner.secret)
    answer = post(
        client,
        f"/v1/invoices/{invoice.pk}/credit_notes",
        {"reason": "one seat too many", "lines": [{"line_item_id": line.pk, "quantity": 1}]},
    )
    assert answer.status_code == 201, answer.content
    note = answer.json()
    assert note["number"] == f"CN-{dt.date.today().year}-00000001"
    assert (note["subtotal"], note["tax"], note["total"], note["amount_due_reduced"]) == (
        50,
        0,
        50,
        50,
    )
    assert note["lines"][0]["line_item_id"] == line.pk
    assert note["customer"]["name"] == "Owner Inc"
    assert answer["Location"].endswith(f"/v1/credit_notes/{note['id']}")

    assert client.get(f"/v1/credit_notes/{note['id']}").json()["id"] == note["id"]
    assert [n["id"] for n in client.get("/v1/credit_notes").json()] == [note["id"]]
    assert [n["id"] for n in client.get(f"/v1/invoices/{invoice.pk}/credit_notes").json()] == [
        note["id"]
    ]
    assert client.get(f"/v1/invoices/{invoice.pk}").json()["amount_credited"] == 50

    # another account's key sees none of it
    stranger = client_for(other.secret)
    assert stranger.get(f"/v1/credit_notes/{note['id']}").status_code == 404
    assert stranger.get("/v1/credit_notes").json() == []
    assert stranger.get(f"/v1/invoices/{invoice.pk}/credit_notes").status_code == 404
    answer = post(stranger, f"/v1/invoices/{invoice.pk}/credit_notes", {"reason": "x", "amount": 1})
    assert answer.status_code == 404
    answer = post(
        stranger,
        f"/v1/invoices/{invoice.pk}/payments",
        {"amount": 1, "date": TODAY, "method": "other"},
    )
    assert answer.status_code == 404
    assert CreditNote.objects.count() == 1


def test_paid_invoice_refunded_through_the_gateway(owner):
    invoice = services.invoice_charge(
        invoice=make_invoice(account=owner.account, state=S.PENDING), actor="t"
    )
    answer = post(
        client_for(owner.secret),
        f"/v1/invoices/{invoice.pk}/credit_notes",
        {"reason": "discount", "amount": "10.00", "refund": True},
    )
    assert answer.status_code == 201, answer.content
    assert answer.json()["amount_refunded"] == 10
    assert invoice.payment_transactions.get(action="refund").amount == D("10")


def test_overpayment_and_credit_to_balance_reach_the_next_invoice(owner):
    client = client_for(owner.secret)
    invoice = make_invoice(account=owner.account, state=S.PENDING)
    post(
        client,
        f"/v1/invoices/{invoice.pk}/payments",
        {"amount": 125, "date": TODAY, "method": "bank_transfer"},
    )
    assert account_credit_balance(owner.account, "USD") == D("25")
    answer = post(
        client,
        "/v1/invoices",
        {"customer_id": owner.account.pk, "amount": 100, "date": TODAY, "due_date": TODAY},
    )
    assert answer.status_code == 201, answer.content
    assert (answer.json()["credit_applied"], answer.json()["amount_due"]) == (25, 75)


HOSTILE_PAYMENTS = [
    ({"amount": -1, "date": TODAY, "method": "other"}, "amount"),
    ({"amount": 0, "date": TODAY, "method": "other"}, "amount"),
    ({"amount": "١٠", "date": TODAY, "method": "other"}, "amount"),  # Arabic-Indic digits
    ({"amount": "１０", "date": TODAY, "method": "other"}, "amount"),  # full-width digits
    ({"amount": "1.001", "date": TODAY, "method": "other"}, "amount"),
    ({"amount": "NaN", "date": TODAY, "method": "other"}, "amount"),
    ({"amount": 10, "date": "２０２６-01-01", "method": "other"}, "date"),
    ({"amount": 10, "date": "2999-01-01", "method": "other"}, "date"),
    ({"amount": 10, "date": TODAY, "method": "credit_card"}, "method"),
    ({"amount": 10, "date": TODAY}, "method"),
    ({"amount": 10, "date": TODAY, "method": "other", "extra": 1}, "extra"),
]


@pytest.mark.parametrize(("body", "field"), HOSTILE_PAYMENTS)
def test_hostile_payments_name_the_field_and_write_nothing(owner, body, field):
    invoice = make_invoice(account=owner.account, state=S.UNPAID)
    answer = post(client_for(owner.secret), f"/v1/invoices/{invoice.pk}/payments", body)
    assert answer.status_code == 400, answer.content
    assert field in answer.json()["error"]["details"]
    assert not PaymentTransaction.objects.exists()
    invoice.refresh_from_db()
    assert invoice.amount_paid == 0


HOSTILE_CREDITS = [
    ({"reason": "x", "amount": -1}, "amount"),
    ({"reason": "x", "amount": 0}, "amount"),
    ({"reason": "x", "amount": "100.01"}, "amount"),  # more than the invoice
    ({"reason": "x", "amount": "٥"}, "amount"),
    ({"reason": "x", "amount": "1.001"}, "amount"),
    ({"reason": "x"}, "amount"),
    ({"reason": "x", "amount": 1, "lines": [{"line_item_id": 1, "quantity": 1}]}, "amount"),
    ({"amount": 1}, "reason"),
    ({"reason": " ", "amount": 1}, "reason"),
    ({"reason": "x", "lines": [{"line_item_id": 999999, "quantity": 1}]}, "lines[0].line_item_id"),
    ({"reason": "x", "amount": 1, "refund": "yes"}, "refund"),
    ({"reason": "x", "amount": 1, "refund": True}, "refund"),  # nothing paid
]


@pytest.mark.parametrize(("body", "field"), HOSTILE_CREDITS)
def test_hostile_credit_notes_name_the_field_and_write_nothing(owner, body, field):
    invoice = make_invoice(account=owner.account, state=S.UNPAID)
    answer = post(client_for(owner.secret), f"/v1/invoices/{invoice.pk}/credit_notes", body)
    assert answer.status_code == 400, answer.content
    assert field in answer.json()["error"]["details"], answer.json()
    assert not CreditNote.objects.exists()
    assert not InvoiceCounter.objects.filter(series__startswith="CN").exists()


def test_line_quantity_beyond_the_line_names_it(owner):
    invoice = make_invoice(account=owner.account, lines=[("2", "10")], state=S.UNPAID)
    line = invoice.line_items.get()
    body = {"reason": "x", "lines": [{"line_item_id": line.pk, "quantity": 3}]}
    answer = post(client_for(owner.secret), f"/v1/invoices/{invoice.pk}/credit_notes", body)
    assert answer.status_code == 400
    assert "lines[0].quantity" in answer.json()["error"]["details"]


@pytest.mark.parametrize("state", [S.OPEN, S.CANCELLED])
def test_wrong_state_is_409(owner, state):
    invoice = make_invoice(account=owner.account, state=state)
    client = client_for(owner.secret)
    answer = post(client, f"/v1/invoices/{invoice.pk}/credit_notes", {"reason": "x", "amount": 1})
    assert answer.status_code == 409
    assert "credited" in answer.json()["error"]["message"]
    answer = post(
        client,
        f"/v1/invoices/{invoice.pk}/payments",
        {"amount": 1, "date": TODAY, "method": "other"},
    )
    assert answer.status_code == 409
    assert not CreditNote.objects.exists() and not PaymentTransaction.objects.exists()
