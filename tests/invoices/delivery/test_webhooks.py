"""/v1/webhook_endpoints, Standard Webhooks signatures, the SSRF guard, the delivery log
and replays."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient
from standardwebhooks import Webhook

from invoices import services
from invoices.delivery import outbox, webhooks
from invoices.delivery.webhooks import UnsafeTarget, target_check
from invoices.models import Invoice, Notification, WebhookEndpoint
from tests.factories import make_invoice

pytestmark = pytest.mark.django_db


def _client(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def test_crud(provider, receiver):
    created = provider.post(
        "/v1/webhook_endpoints",
        {"url": receiver.url, "events": ["invoice.paid", "invoice.issued"], "description": "ERP"},
        format="json",
    )
    assert created.status_code == 201
    body = created.json()
    endpoint_id = body["id"]
    assert body["events"] == ["invoice.issued", "invoice.paid"]
    assert body["secret"].startswith("whsec_") and body["enabled"] is True
    # the secret is shown once
    read = provider.get(f"/v1/webhook_endpoints/{endpoint_id}")
    assert read.status_code == 200 and "secret" not in read.json()
    listed = provider.get("/v1/webhook_endpoints")
    assert [e["id"] for e in listed.json()] == [endpoint_id]
    assert listed["X-Total-Count"] == "1"
    changed = provider.patch(
        f"/v1/webhook_endpoints/{endpoint_id}", {"events": ["*"]}, format="json"
    )
    assert changed.status_code == 200 and changed.json()["events"] == ["*"]
    rolled = provider.post(f"/v1/webhook_endpoints/{endpoint_id}/roll_secret")
    assert rolled.status_code == 200
    assert rolled.json()["secret"] != body["secret"]
    assert provider.delete(f"/v1/webhook_endpoints/{endpoint_id}").status_code == 204
    assert provider.get(f"/v1/webhook_endpoints/{endpoint_id}").status_code == 404


@pytest.mark.parametrize(
    "body, field",
    [
        ({"url": "ftp://example.com/x", "events": ["*"]}, "url"),
        ({"url": "https://example.com/x", "events": []}, "events"),
        ({"url": "https://example.com/x", "events": ["invoice.exploded"]}, "events"),
        ({"url": "https://example.com/x", "events": ["*"], "secret": "mine"}, "secret"),
    ],
)
def test_invalid_bodies_are_refused(provider, body, field):
    response = provider.post("/v1/webhook_endpoints", body, format="json")
    assert response.status_code == 400, response.content
    assert field in str(response.json()["error"])


def test_plain_http_is_refused_unless_private_targets_are_allowed(provider, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False
    response = provider.post(
        "/v1/webhook_endpoints", {"url": "http://example.com/x", "events": ["*"]}, format="json"
    )
    assert response.status_code == 400


def test_only_a_write_key_for_all_accounts_manages_endpoints(owner, read_key, admin_key):
    endpoint = WebhookEndpoint.objects.create(url="https://example.com/hook", events=["*"])
    body = {"url": "https://example.com/x", "events": ["*"]}
    account_key = _client(owner.secret)
    assert account_key.get("/v1/webhook_endpoints").status_code == 403
    assert account_key.post("/v1/webhook_endpoints", body, format="json").status_code == 403
    assert account_key.delete(f"/v1/webhook_endpoints/{endpoint.pk}").status_code == 403
    reader = _client(read_key[1])
    assert reader.get("/v1/webhook_endpoints").status_code == 200
    assert reader.post("/v1/webhook_endpoints", body, format="json").status_code == 403
    assert reader.post(f"/v1/webhook_endpoints/{endpoint.pk}/roll_secret").status_code == 403
    assert APIClient().get("/v1/webhook_endpoints").status_code == 401


def test_a_retried_create_with_an_idempotency_key_creates_one(provider):
    body = {"url": "https://example.com/x", "events": ["*"]}
    first = provider.post(
        "/v1/webhook_endpoints", body, format="json", HTTP_IDEMPOTENCY_KEY="create-1"
    )
    again = provider.post(
        "/v1/webhook_endpoints", body, format="json", HTTP_IDEMPOTENCY_KEY="create-1"
    )
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert WebhookEndpoint.objects.count() == 1


def test_the_test_event_is_signed_and_logged(
    provider, receiver, django_capture_on_commit_callbacks
):
    created = provider.post(
        "/v1/webhook_endpoints", {"url": receiver.url, "events": ["*"]}, format="json"
    ).json()
    with django_capture_on_commit_callbacks(execute=True):
        response = provider.post(f"/v1/webhook_endpoints/{created['id']}/test")
    assert response.status_code == 202
    request = receiver.requests[0]
    assert (
        Webhook(created["secret"]).verify(request.body, request.headers)["type"] == "webhook.test"
    )
    deliveries = provider.get(f"/v1/webhook_endpoints/{created['id']}/deliveries").json()
    assert deliveries[0]["type"] == "webhook.test"
    assert deliveries[0]["state"] == "sent"
    attempt = deliveries[0]["attempts"][0]
    assert attempt["response_status"] == 200
    assert attempt["response_excerpt"] == '{"received": true}'


def test_a_rolled_secret_signs_the_next_messages(
    provider, receiver, django_capture_on_commit_callbacks
):
    created = provider.post(
        "/v1/webhook_endpoints", {"url": receiver.url, "events": ["*"]}, format="json"
    ).json()
    rolled = provider.post(f"/v1/webhook_endpoints/{created['id']}/roll_secret").json()
    with django_capture_on_commit_callbacks(execute=True):
        provider.post(f"/v1/webhook_endpoints/{created['id']}/test")
    request = receiver.requests[0]
    Webhook(rolled["secret"]).verify(request.body, request.headers)
    with pytest.raises(Exception, match="No matching signature"):
        Webhook(created["secret"]).verify(request.body, request.headers)


def test_a_failed_delivery_can_be_replayed(provider, receiver, django_capture_on_commit_callbacks):
    receiver.status = 500
    created = provider.post(
        "/v1/webhook_endpoints", {"url": receiver.url, "events": ["invoice.issued"]}, format="json"
    ).json()
    with django_capture_on_commit_callbacks(execute=True):
        services.invoice_issue(invoice=make_invoice(), actor="test")
    delivery = provider.get(f"/v1/webhook_endpoints/{created['id']}/deliveries").json()[0]
    assert delivery["state"] == "pending" and delivery["attempts"][0]["response_status"] == 500
    # still queued for its retry: a replay is refused
    replay = f"/v1/webhook_endpoints/{created['id']}/deliveries/{delivery['id']}/replay"
    assert provider.post(replay).status_code == 409
    # given up: staff replay it
    Notification.objects.filter(pk=delivery["id"]).update(state="failed")
    receiver.status = 200
    with django_capture_on_commit_callbacks(execute=True):
        response = provider.post(replay)
    assert response.status_code == 202
    assert Notification.objects.get(pk=delivery["id"]).state == "sent"
    assert len(receiver.unique_ids) == 1 and len(receiver.requests) == 2


def test_redirects_are_not_followed(receiver, django_capture_on_commit_callbacks):
    receiver.status = 302
    with WebhookReceiverAt() as elsewhere:
        receiver.location = elsewhere.url
        WebhookEndpoint.objects.create(url=receiver.url, events=["*"])
        with django_capture_on_commit_callbacks(execute=True):
            make_invoice()
        assert elsewhere.requests == []
    notification = Notification.objects.get(channel="webhook")
    assert notification.state == "pending"
    assert notification.webhook_attempts.get().response_status == 302


def WebhookReceiverAt():  # noqa: N802 - reads as the class it returns
    from tests.support.receivers import WebhookReceiver

    return WebhookReceiver()


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/x",
        "https://localhost/x",
        "https://10.0.0.5/x",
        "https://192.168.1.1/x",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/x",
        "https://[fd00:ec2::254]/x",
        "https://[::ffff:127.0.0.1]/x",
        "https://0.0.0.0/x",
        "http://93.184.215.14/x",
    ],
)
def test_internal_targets_and_plain_http_are_refused(url, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False
    with pytest.raises(UnsafeTarget):
        target_check(url)


def test_the_address_is_checked_at_delivery_time(receiver, settings, monkeypatch):
    # given: an endpoint whose name resolved to a public address when it was created
    endpoint = WebhookEndpoint.objects.create(url="https://hooks.example.com/x", events=["*"])
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False
    # when: its DNS now answers a private address
    monkeypatch.setattr(
        webhooks.socket,
        "getaddrinfo",
        lambda *a, **k: [(2, 1, 6, "", ("10.1.2.3", 443))],
    )
    make_invoice()
    notification = Notification.objects.get(endpoint=endpoint)
    # then: nothing is sent; the attempt says why
    assert outbox.notification_send(notification.pk) == "retry"
    attempt = notification.webhook_attempts.get()
    assert "non-public" in attempt.error and attempt.response_status is None
    assert receiver.requests == []


def test_the_payload_is_the_v1_representation(
    provider, receiver, django_capture_on_commit_callbacks
):
    WebhookEndpoint.objects.create(url=receiver.url, events=["invoice.paid"])
    with django_capture_on_commit_callbacks(execute=True):
        invoice = make_invoice(state=Invoice.State.PENDING)
        services.invoice_charge(invoice=invoice, actor="test")
    import json

    payload = json.loads(receiver.requests[0].body)
    assert set(payload) == {"id", "type", "created_at", "data"}
    assert payload["data"] == provider.get(f"/v1/invoices/{invoice.pk}").json()


def test_the_connection_goes_to_the_checked_address(receiver, settings, monkeypatch):
    # given: the name resolves to a public address when checked ...
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False
    monkeypatch.setattr(
        webhooks.socket, "getaddrinfo", lambda *a, **k: [(2, 1, 6, "", ("93.184.215.14", 443))]
    )
    assert target_check("https://hooks.example.com/x") == "93.184.215.14"
    # ... and the client connects there, whatever a later lookup would answer
    connected = []

    def fake_connect(address, timeout=None, *args):
        connected.append(address)
        raise OSError("no network in tests")

    monkeypatch.setattr(webhooks.socket, "create_connection", fake_connect)
    status, _, error = webhooks.post(
        "https://hooks.example.com/x", b"{}", {}, address="93.184.215.14"
    )
    assert connected == [("93.184.215.14", 443)]
    assert status is None and "no network" in error
