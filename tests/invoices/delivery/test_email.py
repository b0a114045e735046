"""The buyer's e-mails through a real SMTP server: receipts, failed-charge notices and
reminders on the configured schedule, each once."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command

from invoices import services
from invoices.models import Invoice, Notification
from tests.factories import AccountFactory, make_invoice

pytestmark = pytest.mark.django_db


def _bodies(message) -> tuple[str, str]:
    parts = {part.get_content_type(): part for part in message.walk()}
    return (
        parts["text/plain"].get_payload(decode=True).decode(),
        parts["text/html"].get_payload(decode=True).decode(),
    )


def test_a_payment_sends_a_receipt(smtp, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        invoice = make_invoice(state=Invoice.State.PENDING)
        services.invoice_charge(invoice=invoice, actor="test")
    subjects = [m["Subject"] for m in smtp.messages]
    assert subjects == [
        f"Invoice {invoice.friendly_id} from {invoice.seller()['name']}",
        f"Receipt for invoice {invoice.friendly_id}",
    ]
    text, html = _bodies(smtp.messages[1])
    assert "card ending in 4242" in text and "/i/" in text
    assert "/i/" in html
    # no attachment on a receipt
    assert "application/pdf" not in {p.get_content_type() for p in smtp.messages[1].walk()}


def test_a_declined_charge_sends_a_notice(smtp, django_capture_on_commit_callbacks):
    account = AccountFactory(card_token="tok_chargeDeclined")
    with django_capture_on_commit_callbacks(execute=True):
        invoice = make_invoice(account=account, state=Invoice.State.PENDING)
        with pytest.raises(services.ChargeFailed):
            services.invoice_charge(invoice=invoice, actor="test")
    assert smtp.messages[-1]["Subject"] == f"Payment failed for invoice {invoice.friendly_id}"


def test_the_sender_is_the_seller_at_the_configured_address(
    smtp, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        invoice = make_invoice(state=Invoice.State.PENDING)
    assert smtp.messages[0]["From"].endswith("<billing@seller.example>")
    assert invoice.seller()["name"] in smtp.messages[0]["From"]


def test_an_smtp_outage_is_retried(settings, django_capture_on_commit_callbacks):
    from tests.support.ports import free_port

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()  # nothing listens
    with django_capture_on_commit_callbacks(execute=True):
        make_invoice(state=Invoice.State.PENDING)
    email = Notification.objects.get(channel="email")
    assert (email.state, email.attempts) == ("pending", 1)
    assert "Connection refused" in email.last_error or "Error" in email.last_error


def test_reminders_follow_the_schedule_once_each(smtp, settings):
    settings.INVOICE_REMINDER_DAYS = [-3, 1, 7, 14]
    with time_machine.travel(dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC), tick=False):
        invoice = make_invoice(state=Invoice.State.PENDING)
    Notification.objects.all().delete()
    due = invoice.due_on
    sent = {}
    # when: the daily job runs every day from issue to 20 days after the due date, twice
    day = invoice.issued_on
    while day <= due + dt.timedelta(days=20):
        for _ in range(2):
            call_command("send_reminders", "--date", day.isoformat(), stdout=StringIO())
        sent[day] = len(smtp.messages)
        day += dt.timedelta(days=1)
    # then: one reminder per offset, on its day
    reminders = Notification.objects.filter(topic="reminder").order_by("id")
    assert list(reminders.values_list("dedupe_key", flat=True)) == [
        f"reminder:{invoice.pk}:{offset}:email" for offset in (-3, 1, 7, 14)
    ]
    assert len(smtp.messages) == 4
    first_days = sorted({min(d for d, n in sent.items() if n >= k) for k in range(1, 5)})
    assert [(d - due).days for d in first_days] == [-3, 1, 7, 14]
    assert "is due in 3 days" in _bodies(smtp.messages[0])[0]
    assert "is overdue" in smtp.messages[1]["Subject"]


def test_a_paid_invoice_gets_no_reminder(smtp, settings):
    invoice = make_invoice(state=Invoice.State.PAID)
    Notification.objects.all().delete()
    call_command(
        "send_reminders",
        "--date",
        (invoice.due_on + dt.timedelta(days=1)).isoformat(),
        stdout=StringIO(),
    )
    assert smtp.messages == []
