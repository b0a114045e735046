"""Idempotency-Key on /v1 POSTs: replay, mismatch, in flight, crashes, expiry, per API key."""

from __future__ import annotations

import datetime as dt
import json
import threading
from typing import Any

import pytest
from django.db import connection, connections
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Account, IdempotencyKey
from billing.api import idempotency
from invoices import services
from invoices.models import Invoice, PaymentTransaction
from tests.factories import make_api_key, make_invoice
from tests.support.clock import today


def client_for(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def post(client: APIClient, path: str, body: dict | None, key: str | None):
    headers: dict[str, Any] = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    if body is None:
        return client.post(path, **headers)
    return client.post(path, data=json.dumps(body), content_type="application/json", **headers)


def body_for(account: Account, amount: str = "100.00") -> dict:
    return {
        "customer_id": account.pk,
        "amount": float(amount),
        "date": today().isoformat(),
        "due_date": (today() + dt.timedelta(days=30)).isoformat(),
    }


def test_the_same_key_and_body_replays_the_first_response(owner):
    client = client_for(owner.secret)
    first = post(client, "/v1/invoices", body_for(owner.account), "create-1")
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first
    second = post(client, "/v1/invoices", body_for(owner.account), "create-1")
    assert second.status_code == 201
    assert second["Idempotent-Replayed"] == "true"
    assert second.content == first.content
    assert second["Location"] == first["Location"]
    assert second["Content-Type"] == first["Content-Type"]
    assert Invoice.objects.count() == 1
    stored = IdempotencyKey.objects.get()
    assert stored.status == IdempotencyKey.Status.COMPLETED
    assert stored.api_key == owner.key
    assert stored.expires_at > timezone.now() + dt.timedelta(hours=23)


def test_without_a_key_every_post_runs(owner):
    client = client_for(owner.secret)
    post(client, "/v1/invoices", body_for(owner.account), None)
    post(client, "/v1/invoices", body_for(owner.account), None)
    assert Invoice.objects.count() == 2
    assert not IdempotencyKey.objects.exists()


def test_the_same_key_with_another_body_is_422(owner):
    client = client_for(owner.secret)
    assert post(client, "/v1/invoices", body_for(owner.account), "k").status_code == 201
    response = post(client, "/v1/invoices", body_for(owner.account, "99.00"), "k")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert Invoice.objects.count() == 1


def test_the_same_key_on_another_path_is_422(owner):
    invoice = make_invoice(account=owner.account)
    client = client_for(owner.secret)
    assert post(client, f"/v1/invoices/{invoice.pk}/issue", None, "k").status_code == 200
    response = post(client, f"/v1/invoices/{invoice.pk}/cancel", None, "k")
    assert response.status_code == 422
    assert Invoice.objects.get(pk=invoice.pk).state == Invoice.State.PENDING


def test_keys_are_per_api_key(owner):
    second_key, second_secret = make_api_key(scope="write", account=owner.account)
    assert (
        post(client_for(owner.secret), "/v1/invoices", body_for(owner.account), "k").status_code
        == 201
    )
    response = post(client_for(second_secret), "/v1/invoices", body_for(owner.account), "k")
    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response
    assert Invoice.objects.count() == 2


def test_a_request_still_in_flight_is_409(owner):
    body = json.dumps(body_for(owner.account)).encode()
    IdempotencyKey.objects.create(
        api_key=owner.key,
        key="busy",
        request_method="POST",
        request_path="/v1/invoices",
        request_hash=idempotency.request_fingerprint("POST", "/v1/invoices", body),
        expires_at=timezone.now() + idempotency.TTL,
    )
    response = client_for(owner.secret).post(
        "/v1/invoices", data=body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="busy"
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_request_in_progress"
    assert not Invoice.objects.exists()


def test_an_abandoned_claim_is_taken_over(owner):
    body = json.dumps(body_for(owner.account)).encode()
    long_ago = timezone.now() - idempotency.ABANDONED_AFTER - dt.timedelta(seconds=1)
    IdempotencyKey.objects.create(
        api_key=owner.key,
        key="crashed",
        request_method="POST",
        request_path="/v1/invoices",
        request_hash=idempotency.request_fingerprint("POST", "/v1/invoices", body),
        expires_at=timezone.now() + idempotency.TTL,
        created_at=long_ago,
    )
    # updated_at is auto_now on save; set the claim time the way a crash leaves it.
    IdempotencyKey.objects.update(updated_at=long_ago)
    response = client_for(owner.secret).post(
        "/v1/invoices", data=body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="crashed"
    )
    assert response.status_code == 201
    assert IdempotencyKey.objects.get().status == IdempotencyKey.Status.COMPLETED


def test_an_expired_key_can_be_used_again(owner):
    client = client_for(owner.secret)
    assert post(client, "/v1/invoices", body_for(owner.account), "k").status_code == 201
    IdempotencyKey.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    response = post(client, "/v1/invoices", body_for(owner.account, "5.00"), "k")
    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response
    assert Invoice.objects.count() == 2


def test_a_crash_frees_the_key_for_a_retry(owner, monkeypatch):
    def explode(**kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(services, "invoice_issue", explode)
    client = client_for(owner.secret)
    client.raise_request_exception = False
    response = post(client, "/v1/invoices", body_for(owner.account), "k")
    assert response.status_code == 500
    assert not IdempotencyKey.objects.exists()
    assert not Invoice.objects.exists()  # the create rolled back as a whole
    monkeypatch.undo()
    retry = post(client, "/v1/invoices", body_for(owner.account), "k")
    assert retry.status_code == 201
    assert "Idempotent-Replayed" not in retry


def test_a_declined_charge_is_replayed_not_charged_again(owner):
    Account.objects.filter(pk=owner.account.pk).update(card_token="tok_chargeDeclined")
    invoice = make_invoice(account=owner.account, state=Invoice.State.PENDING)
    client = client_for(owner.secret)
    first = post(client, f"/v1/invoices/{invoice.pk}/charge", None, "charge-1")
    assert first.status_code == 402
    second = post(client, f"/v1/invoices/{invoice.pk}/charge", None, "charge-1")
    assert second.status_code == 402
    assert second["Idempotent-Replayed"] == "true"
    assert second.content == first.content
    assert PaymentTransaction.objects.filter(invoice=invoice).count() == 1


def test_validation_errors_are_stored_too(owner):
    client = client_for(owner.secret)
    bad = {"customer_id": owner.account.pk, "amount": -1}
    assert post(client, "/v1/invoices", bad, "k").status_code == 400
    replay = post(client, "/v1/invoices", bad, "k")
    assert replay.status_code == 400
    assert replay["Idempotent-Replayed"] == "true"


def test_auth_failures_claim_nothing(owner, read_key):
    response = post(client_for(read_key[1]), "/v1/invoices", body_for(owner.account), "k")
    assert response.status_code == 403
    assert not IdempotencyKey.objects.exists()


@pytest.mark.parametrize("key", ["", "   ", "x" * 256])
def test_an_invalid_key_is_400(owner, key):
    response = post(client_for(owner.secret), "/v1/invoices", body_for(owner.account), key)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["error"]["details"]
    assert not Invoice.objects.exists()


def test_gets_ignore_the_header(owner):
    response = client_for(owner.secret).get("/v1/invoices", HTTP_IDEMPOTENCY_KEY="k")
    assert response.status_code == 200
    assert not IdempotencyKey.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_concurrent_duplicate_is_409_while_the_first_runs(monkeypatch):
    # given: a create that blocks inside the view until released
    from tests.factories import AccountFactory

    account = AccountFactory()
    _, secret = make_api_key(scope="write", account=account)
    inside, release = threading.Event(), threading.Event()
    real_issue = services.invoice_issue

    def slow_issue(**kwargs):
        inside.set()
        assert release.wait(30), "the test never released the first request"
        return real_issue(**kwargs)

    monkeypatch.setattr(services, "invoice_issue", slow_issue)
    results: dict[str, Any] = {}

    def first_request() -> None:
        try:
            results["first"] = post(client_for(secret), "/v1/invoices", body_for(account), "race")
        finally:
            connections.close_all()

    thread = threading.Thread(target=first_request)
    thread.start()
    try:
        assert inside.wait(30), "the first request never reached the service"
        # when: the same request arrives while the first holds the key
        duplicate = post(client_for(secret), "/v1/invoices", body_for(account), "race")
        # then: it is refused, not run twice
        assert duplicate.status_code == 409
        assert duplicate.json()["error"]["code"] == "idempotency_request_in_progress"
    finally:
        release.set()
        thread.join(30)
    assert results["first"].status_code == 201
    replay = post(client_for(secret), "/v1/invoices", body_for(account), "race")
    assert replay.status_code == 201
    assert replay["Idempotent-Replayed"] == "true"
    assert replay.content == results["first"].content
    assert Invoice.objects.filter(account=account).count() == 1
    assert connection.vendor == "postgresql"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_first_requests_run_once():
    from tests.factories import AccountFactory

    account = AccountFactory()
    _, secret = make_api_key(scope="write", account=account)
    barrier = threading.Barrier(4)
    statuses: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            barrier.wait(30)
            response = post(client_for(secret), "/v1/invoices", body_for(account), "together")
            with lock:
                statuses.append(response.status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(statuses) == 4
    # Each answer is the created invoice (first or replayed) or "in flight";
    # whatever the interleaving, exactly one invoice exists.
    assert set(statuses) <= {201, 409}
    assert 201 in statuses
    assert Invoice.objects.filter(account=account).count() == 1
