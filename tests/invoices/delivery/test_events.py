"""What credit notes and payments announce: the credit note e-mail (its PDF attached)
and `credit_note.issued`, `payment.recorded` with a receipt for a partial payment,
`payment.refunded` for a refund through the gateway; each recorded with the change."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.db import transaction

from invoices import services
from invoices.delivery.endpoints import webhook_endpoint_create
from invoices.models import Invoice, Notification, WebhookEndpoint
from tests.factories import make_invoice

pytestmark = pytest.mark.django_db
ACTOR = "test"
D = Decimal


@pytest.fixture
def endpoint(receiver) -> WebhookEndpoint:
    return webhook_endpoint_create(url=receiver.url, events=["*"])


def _payloads(receiver, event_type: str) -> list[dict]:
    bodies = [json.loads(r.body) for r in receiver.requests]
    return [b for b in bodies if b["type"] == event_type]


def _credit(invoice: Invoice, **kwargs):
    return services.credit_note_create(
        invoice=invoice, reason=kwargs.pop("reason", "wrong quantity"), actor=ACTOR, **kwargs
    )


def test_a_credit_note_sends_its_email_with_the_pdf_and_its_webhook(
    endpoint, receiver, smtp, django_capture_on_commit_callbacks
):
    invoice = make_invoice(lines=[("4", "25.00")], state=Invoice.State.PENDING)
    smtp.messages.clear()
    receiver.requests.clear()
    with django_capture_on_commit_callbacks(execute=True):
        note = _credit(invoice, amount=D("10"))
    # the e-mail: once, in the seller's name, the credit note's PDF attached
    [message] = smtp.messages
    assert message["Subject"] == f"Credit note {note.number} for invoice {invoice.friendly_id}"
    parts = {p.get_content_type(): p for p in message.walk()}
    text = parts["text/plain"].get_payload(decode=True).decode()
    assert note.number in text and "wrong quantity" in text and "/i/" in text
    pdf = parts["application/pdf"]
    assert pdf.get_filename() == f"{note.number}.pdf"
    assert pdf.get_payload(decode=True).startswith(b"%PDF")
    # the webhook: the /v1 credit note
    [event] = _payloads(receiver, "credit_note.issued")
    assert event["data"]["id"] == note.pk
    assert event["data"]["number"] == note.number
    assert event["data"]["invoice_id"] == invoice.pk
    assert D(str(event["data"]["total"])) == note.cost
    assert set(Notification.objects.filter(topic__in=["credit_note", "credit_note.issued"])
               .values_list("state", flat=True)) == {"sent"}  # fmt: skip


def test_a_rolled_back_credit_note_records_nothing(endpoint):
    invoice = make_invoice(state=Invoice.State.PENDING)
    with pytest.raises(RuntimeError), transaction.atomic():
        _credit(invoice, amount=D("10"))
        assert Notification.objects.filter(topic="credit_note.issued").count() == 1
        assert Notification.objects.filter(topic="credit_note").count() == 1
        raise RuntimeError("rolled back")
    assert not Notification.objects.filter(topic__startswith="credit_note").exists()


def test_a_refund_announces_payment_refunded(
    endpoint, receiver, django_capture_on_commit_callbacks
):
    invoice = make_invoice(lines=[("4", "25.00")], state=Invoice.State.PENDING)
    invoice = services.invoice_charge(invoice=invoice, actor=ACTOR)
    with django_capture_on_commit_callbacks(execute=True):
        _credit(invoice, amount=D("30"), refund=True)
    refund = invoice.payment_transactions.get(action="refund")
    [event] = _payloads(receiver, "payment.refunded")
    assert event["data"]["id"] == refund.pk
    assert event["data"]["invoice_id"] == invoice.pk
    assert D(str(event["data"]["amount"])) == refund.amount
    # a credit that refunds nothing announces no refund
    with django_capture_on_commit_callbacks(execute=True):
        _credit(invoice, amount=D("5"))
    assert len(_payloads(receiver, "payment.refunded")) == 1


def test_a_partial_payment_sends_its_receipt_and_the_settling_one_the_paid_receipt(
    endpoint, receiver, smtp, django_capture_on_commit_callbacks
):
    invoice = make_invoice(lines=[("1", "100.00")], state=Invoice.State.PENDING)
    smtp.messages.clear()
    today = dt.date.today()
    with django_capture_on_commit_callbacks(execute=True):
        first = services.invoice_payment_record(
            invoice=invoice, amount=D("40"), paid_on=today, actor=ACTOR
        )
    [message] = smtp.messages
    assert message["Subject"] == f"Receipt for invoice {invoice.friendly_id}"
    parts = {p.get_content_type(): p for p in message.walk()}
    text = parts["text/plain"].get_payload(decode=True).decode()
    assert "received 40" in text and "still due" in text
    # the payment that settles it: one receipt (the paid one), not two
    with django_capture_on_commit_callbacks(execute=True):
        second = services.invoice_payment_record(
            invoice=invoice, amount=D("60"), paid_on=today, actor=ACTOR
        )
    assert len(smtp.messages) == 2
    text = [p for p in smtp.messages[1].walk() if p.get_content_type() == "text/plain"][0]
    assert "It is paid" in text.get_payload(decode=True).decode()
    events = _payloads(receiver, "payment.recorded")
    assert [e["data"]["id"] for e in events] == [first.pk, second.pk]
    assert [e["data"]["invoice_id"] for e in events] == [invoice.pk, invoice.pk]
    assert events[0]["data"]["method"] == "bank_transfer"
    assert len(_payloads(receiver, "invoice.paid")) == 1
