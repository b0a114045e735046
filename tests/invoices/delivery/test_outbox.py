"""The outbox: recorded in the changing transaction, sent once after commit, retried
with backoff, never sent twice when a worker dies mid-delivery."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone

from invoices import services
from invoices.delivery import outbox
from invoices.delivery.endpoints import webhook_endpoint_create
from invoices.delivery.tasks import notification_send_task, notifications_sweep_task
from invoices.models import Invoice, Notification, WebhookEndpoint
from tests.factories import AccountFactory, make_invoice

pytestmark = pytest.mark.django_db
ACTOR = "test"


@pytest.fixture
def endpoint(receiver) -> WebhookEndpoint:
    return webhook_endpoint_create(url=receiver.url, events=["*"])


def _issue(invoice: Invoice) -> Invoice:
    return services.invoice_issue(invoice=invoice, actor=ACTOR)


def test_the_issue_records_its_messages_in_its_own_transaction(endpoint, mailoutbox):
    invoice = make_invoice()
    Notification.objects.all().delete()
    # when: the issue rolls back after recording
    with pytest.raises(RuntimeError), transaction.atomic():
        _issue(invoice)
        assert Notification.objects.filter(topic="invoice.issued").count() == 1
        assert Notification.objects.filter(topic="invoice_issued").count() == 1
        raise RuntimeError("rolled back")
    # then: nothing is left to send
    assert not Notification.objects.exists()
    # and a committed issue leaves its rows, pending until the commit's task runs
    _issue(invoice)
    assert sorted(Notification.objects.values_list("topic", "state")) == [
        ("invoice.issued", "pending"),
        ("invoice_issued", "pending"),
    ]


def test_each_transition_announces_its_event(endpoint, django_capture_on_commit_callbacks):
    account = AccountFactory(card_token="tok_chargeDeclined")
    with django_capture_on_commit_callbacks(execute=True):
        invoice = make_invoice(account=account)
        services.invoice_finalize(invoice=invoice, actor=ACTOR)
        _issue(invoice)
        with pytest.raises(services.ChargeFailed):
            services.invoice_charge(invoice=invoice, actor=ACTOR)
        services.invoice_mark_paid(invoice=invoice, actor=ACTOR)
    webhooks = Notification.objects.filter(channel="webhook").order_by("id")
    assert list(webhooks.values_list("topic", flat=True)) == [
        "invoice.created",
        "invoice.finalized",
        "invoice.issued",
        "invoice.payment_failed",
        "invoice.paid",
    ]
    emails = Notification.objects.filter(channel="email").order_by("id")
    assert list(emails.values_list("topic", flat=True)) == [
        "invoice_issued",
        "payment_failed",
        "receipt",
    ]
    assert set(Notification.objects.values_list("state", flat=True)) == {"sent"}


def test_a_cancelled_invoice_sends_only_the_webhook(endpoint, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        invoice = make_invoice(state=Invoice.State.PENDING)
        services.invoice_cancel(invoice=invoice, actor=ACTOR)
    assert Notification.objects.filter(topic="invoice.cancelled", state="sent").count() == 1


def test_a_duplicated_task_sends_once(endpoint, receiver, smtp):
    invoice = make_invoice()
    _issue(invoice)
    ids = list(
        Notification.objects.filter(topic__startswith="invoice").values_list("pk", flat=True)
    )
    # when: each task is delivered twice (a broker redelivery), and the sweep runs too
    results = [notification_send_task.delay(pk).get() for pk in ids for _ in range(2)]
    notifications_sweep_task.delay().get()
    # then
    assert sorted(results).count("sent") == len(ids)
    assert len(receiver.requests) == Notification.objects.filter(channel="webhook").count()
    assert len(smtp.messages) == 1


def test_a_worker_killed_after_sending_never_sends_a_second_copy(
    endpoint, receiver, smtp, monkeypatch
):
    # given: issued, messages pending
    invoice = make_invoice()
    _issue(invoice)
    pending = list(Notification.objects.values_list("pk", flat=True))
    real_deliver = outbox._deliver

    def deliver_then_die(notification, now):
        real_deliver(notification, now)
        raise SystemExit("worker killed")  # not an Exception: nothing records the outcome

    # when: the worker dies after each send, before marking it sent
    monkeypatch.setattr(outbox, "_deliver", deliver_then_die)
    for pk in pending:
        with pytest.raises(SystemExit):
            outbox.notification_send(pk)
    monkeypatch.setattr(outbox, "_deliver", real_deliver)
    # ... and the broker redelivers the tasks (acks_late), and the sweep runs later
    assert {outbox.notification_send(pk) for pk in pending} == {"skipped"}
    later = timezone.now() + outbox.STALE_CLAIM + dt.timedelta(seconds=1)
    swept = outbox.notifications_sweep(now=later)

    # then: one copy of each, the rows flagged for staff, never re-sent on their own
    assert swept["stale"] == len(pending)
    assert len(smtp.messages) == 1
    assert len(receiver.requests) == len(receiver.unique_ids) == len(pending) - 1
    assert set(Notification.objects.values_list("state", flat=True)) == {"unknown"}
    outbox.notifications_sweep(now=later + dt.timedelta(hours=1))
    assert len(smtp.messages) == 1


def test_a_worker_killed_before_sending_leaves_it_for_staff(endpoint, receiver):
    invoice = make_invoice()
    Notification.objects.all().delete()
    _issue(invoice)
    webhook = Notification.objects.get(channel="webhook")
    # when: a worker claims it and dies before sending
    assert outbox.notification_claim(webhook.pk, timezone.now())
    assert outbox.notification_send(webhook.pk) == "skipped"
    outbox.notifications_sweep(now=timezone.now() + outbox.STALE_CLAIM * 2)
    assert receiver.requests == []
    # then: staff resend it, once, with its original id
    webhook.refresh_from_db()
    assert webhook.state == "unknown"
    assert outbox.notification_resend(webhook)
    assert not outbox.notification_resend(webhook)  # already queued
    assert outbox.notification_send(webhook.pk) == "sent"
    assert [r.headers["webhook-id"] for r in receiver.requests] == [f"msg_{webhook.pk}"]


def test_a_failure_is_retried_with_backoff_and_visible(endpoint, receiver):
    receiver.status = 503
    invoice = make_invoice()
    Notification.objects.all().delete()
    _issue(invoice)
    Notification.objects.filter(channel="email").delete()
    webhook = Notification.objects.get(channel="webhook")
    now = timezone.now()
    assert outbox.notification_send(webhook.pk, now=now) == "retry"
    webhook.refresh_from_db()
    assert (webhook.state, webhook.attempts) == ("pending", 1)
    assert "503" in webhook.last_error
    assert webhook.next_attempt_at == now + dt.timedelta(seconds=30)
    # not due yet: the sweep leaves it
    assert outbox.notifications_sweep(now=now + dt.timedelta(seconds=10))["due"] == 0
    # due: retried, fails again, waits 4 times longer
    second = now + dt.timedelta(seconds=31)
    assert outbox.notifications_sweep(now=second)["due"] == 1
    webhook.refresh_from_db()
    assert webhook.attempts == 2
    assert webhook.next_attempt_at == second + dt.timedelta(minutes=2)
    # the receiver recovers
    receiver.status = 204
    assert outbox.notification_send(webhook.pk, now=second + dt.timedelta(minutes=3)) == "sent"
    assert [a.response_status for a in webhook.webhook_attempts.order_by("id")] == [503, 503, 204]


def test_the_backoff_grows_to_a_cap():
    delays = [outbox.retry_delay(n) for n in range(1, 12)]
    assert delays[:3] == [
        dt.timedelta(seconds=30),
        dt.timedelta(minutes=2),
        dt.timedelta(minutes=8),
    ]
    assert max(delays) == outbox.RETRY_CAP
    assert delays == sorted(delays)


def test_an_endpoint_failing_for_three_days_is_disabled(endpoint, receiver, caplog):
    receiver.status = 500
    invoice = make_invoice()
    Notification.objects.all().delete()
    _issue(invoice)
    webhook = Notification.objects.get(channel="webhook")
    assert outbox.notification_send(webhook.pk) == "retry"
    # when: still failing after the retry window
    later = webhook.created_at + dt.timedelta(days=3, seconds=1)
    with caplog.at_level("ERROR", logger="billing.delivery"):
        assert outbox.notification_send(webhook.pk, now=later) == "failed"
    # then: given up, endpoint disabled, staff told
    endpoint.refresh_from_db()
    assert not endpoint.enabled
    assert endpoint.disabled_reason
    assert any("disabled" in r.message for r in caplog.records if r.levelname == "ERROR")
    # and later events skip it
    _ = make_invoice()
    assert not Notification.objects.filter(topic="invoice.created", endpoint=endpoint).exists()


def test_no_endpoint_and_no_billing_email_records_nothing():
    account = AccountFactory(billing_email="")
    make_invoice(account=account, state=Invoice.State.PENDING)
    assert not Notification.objects.exists()
