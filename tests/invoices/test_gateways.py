"""A gateway's answer never carries payment-method secrets: not stored, not shown."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from invoices.gateways import GatewayResult, gateway_response_public
from invoices.models import Invoice, PaymentTransaction
from tests.factories import AccountFactory, make_invoice

SECRET = "tok_live_s3cr3t_card_token_value"


def test_secret_keys_are_dropped_at_any_depth():
    response = {
        "code": "declined",
        "token": SECRET,
        "Card_Token": SECRET,
        "source": {"cvc_check": "pass", "last4": "4242", "list": [{"password": "x", "ok": 1}]},
    }
    assert gateway_response_public(response) == {
        "code": "declined",
        "source": {"last4": "4242", "list": [{"ok": 1}]},
    }
    assert gateway_response_public({"echo": f"card {SECRET}"}, secrets_=(SECRET,)) == {
        "echo": "[REDACTED]"
    }


def test_a_gateway_result_keeps_no_secret():
    result = GatewayResult(
        success=False,
        reference="r",
        message="m",
        test=True,
        response={"token": SECRET, "code": "x"},
    )
    assert result.response == {"code": "x"}


@pytest.fixture
def declined(db):
    account = AccountFactory(card_token=SECRET)
    return make_invoice(account=account, state=Invoice.State.PENDING)


@pytest.mark.parametrize("suffix", [".xml", ".json"])
def test_a_declined_charge_stores_and_shows_no_card_token(admin_key, declined, suffix):
    client = APIClient()
    response = client.post(f"/api/invoices/{declined.pk}/charge.json?access_token={admin_key[1]}")
    assert response.status_code == 422, response.content
    payment = PaymentTransaction.objects.get(invoice=declined)
    assert SECRET not in str(payment.gateway_response)
    listing = client.get(
        f"/api/invoices/{declined.pk}/payment_transactions{suffix}?access_token={admin_key[1]}"
    )
    assert listing.status_code == 200
    assert SECRET.encode() not in listing.content


def test_secrets_stored_before_are_not_shown(admin_key, declined):
    client = APIClient()
    client.post(f"/api/invoices/{declined.pk}/charge.json?access_token={admin_key[1]}")
    PaymentTransaction.objects.filter(invoice=declined).update(
        gateway_response={"code": "no_payment_method", "token": SECRET, "card": {"number": SECRET}}
    )
    listing = client.get(
        f"/api/invoices/{declined.pk}/payment_transactions.xml?access_token={admin_key[1]}"
    )
    assert listing.status_code == 200
    assert SECRET.encode() not in listing.content
    assert b"<code>no_payment_method</code>" in listing.content
