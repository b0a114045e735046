"""A real Celery worker killed with SIGKILL in the middle of a delivery, then restarted.

A real SMTP server and a real webhook receiver run in this process; the API server
(gunicorn) and the worker (`celery -A billing worker`) are real processes on this
test's PostgreSQL database and a Redis broker (the test's own queue). An invoice is
issued through /v1; the receiver (or the SMTP server) holds the first delivery
unanswered, the test kills the worker while it waits inside that send, and starts a
new worker. Redis hands the killed task to the new worker (`acks_late`).

The outbox is at-most-once for a message in flight (invoices/delivery/outbox.py):
the redelivered task finds the row claimed and sends nothing; the other message is
sent once by the new worker; after 15 minutes the sweep marks the killed one
`unknown` (never re-sent by itself) and staff see it in the admin, whose resend
carries the same id. So the receivers end with exactly one copy of each message.
"""

from __future__ import annotations

import datetime as dt

import pytest
import requests
from celery import Celery
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from django.utils import timezone
from standardwebhooks import Webhook

from invoices.delivery import outbox
from invoices.models import Invoice, Notification
from tests.factories import AccountFactory, make_api_key
from tests.support.receivers import SMTPServer, WebhookReceiver
from tests.support.workers import BROKER, Broker, api_server, celery_worker, redis_up

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture
def broker():
    if not redis_up():
        pytest.skip("needs Redis on 127.0.0.1:6379")
    broker = Broker()
    yield broker
    broker.close()


@pytest.mark.parametrize("killed_in", ["webhook", "email"])
def test_a_worker_killed_mid_delivery_sends_nothing_twice(broker, tmp_path, killed_in):
    smtp = SMTPServer(hold_first=killed_in == "email")
    receiver = WebhookReceiver(hold_first=killed_in == "webhook")
    held = receiver if killed_in == "webhook" else smtp
    env = {
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp.port),
        "DEFAULT_FROM_EMAIL": "billing@seller.example",
        "WEBHOOKS_ALLOW_PRIVATE_TARGETS": "1",
    }
    account = AccountFactory(billing_email="ap@buyer.example")
    _key, secret = make_api_key(scope="write", name="worker-kill")
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {secret}"
    probe = Celery("probe", broker=BROKER, backend=BROKER)
    with smtp, receiver:
        server, base = api_server(broker, tmp_path, **env)
        worker = celery_worker(broker, tmp_path, "worker-1", **env)
        second = None
        try:
            # given: an endpoint for issued invoices, created through /v1
            created = api.post(
                f"{base}/v1/webhook_endpoints",
                json={"url": receiver.url, "events": ["invoice.issued"]},
                timeout=30,
            )
            assert created.status_code == 201, created.text
            signing_secret = created.json()["secret"]

            # when: an invoice is issued through /v1 ...
            today = timezone.localdate().isoformat()
            response = api.post(
                f"{base}/v1/invoices",
                json={
                    "customer_id": account.pk,
                    "amount": 120,
                    "date": today,
                    "due_date": today,
                },
                timeout=30,
            )
            assert response.status_code == 201, response.text
            invoice = Invoice.objects.get(pk=response.json()["id"])
            hook = Notification.objects.get(invoice=invoice, channel="webhook")
            mail = Notification.objects.get(invoice=invoice, channel="email")
            killed = hook if killed_in == "webhook" else mail

            # ... and the worker is killed while the first delivery is on the wire
            held.wait_for(1, timeout=60)
            killed.refresh_from_db()
            assert killed.state == "sending"  # claimed, sent, not yet marked
            worker.kill9()
            in_flight = broker.unacked()
            assert [(t["task"], t["args"]) for t in in_flight] == [
                ("delivery.send", f"({killed.pk},)")
            ], worker.log
            held.release()

            # then: a new worker is handed the killed task again, and sends nothing for it
            second = celery_worker(broker, tmp_path, "worker-2", **env)
            outcome = probe.AsyncResult(in_flight[0]["id"]).get(timeout=45)
            assert outcome == "skipped", second.log
            # ... while the other message goes out once
            broker.wait_until(broker.drained, 45, "the queue drained")
        finally:
            for process in (second, worker, server):
                if process is not None:
                    process.stop()
            probe.close()

        # exactly one e-mail, with its PDF, and one webhook, that Standard Webhooks verifies
        assert len(smtp.messages) == 1
        message = smtp.messages[0]
        assert message["To"] == "ap@buyer.example"
        assert message["Message-ID"].startswith(f"<{mail.message_id}@")
        parts = {part.get_content_type(): part for part in message.walk()}
        pdf = parts["application/pdf"].get_payload(decode=True)
        assert isinstance(pdf, bytes) and pdf.startswith(b"%PDF")
        assert len(receiver.requests) == 1
        request = receiver.requests[0]
        payload = Webhook(signing_secret).verify(request.body, request.headers)
        assert payload["type"] == "invoice.issued" and payload["data"]["id"] == invoice.pk
        assert request.headers["webhook-id"] == hook.message_id

        # the message that was in flight stays claimed, never re-sent by itself ...
        other = mail if killed_in == "webhook" else hook
        other.refresh_from_db()
        killed.refresh_from_db()
        assert other.state == "sent" and other.attempts == 1
        assert killed.state == "sending" and killed.attempts == 1
        # ... until the sweep, 15 minutes on, says its outcome is unknown
        later = timezone.now() + outbox.STALE_CLAIM + dt.timedelta(seconds=1)
        assert outbox.notifications_sweep(now=later)["stale"] == 1
        killed.refresh_from_db()
        assert killed.state == "unknown"
        assert "not re-sent automatically" in killed.last_error
        assert len(smtp.messages) == 1 and len(receiver.requests) == 1

        # and staff see it, in the outbox and on the invoice's page
        staff = _finance_client()
        listing = staff.get("/admin/invoices/notification/?state__exact=unknown").content.decode()
        assert f"/admin/invoices/notification/{killed.pk}/change/" in listing
        assert "Outcome unknown" in listing
        page = staff.get(f"/admin/invoices/invoice/{invoice.pk}/change/").content.decode()
        assert "Outcome unknown" in page


def _finance_client() -> Client:
    user = get_user_model().objects.create_user("fin-kill", password="x" * 12, is_staff=True)
    user.groups.add(Group.objects.get(name="Finance"))
    client = Client()
    client.force_login(user)
    return client
