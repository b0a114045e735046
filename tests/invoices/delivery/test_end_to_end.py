"""Issuing an invoice through /v1, with a real SMTP server and webhook receiver running:
one e-mail with the PDF attached and one `invoice.issued` webhook that the
`standardwebhooks` library verifies; the hosted link in the e-mail opens the invoice."""

from __future__ import annotations

import json

import pytest
from django.utils import timezone
from standardwebhooks import Webhook

from invoices.models import Invoice, Notification

pytestmark = pytest.mark.django_db


def test_issuing_through_v1_sends_one_email_and_one_signed_webhook(
    provider, owner, smtp, receiver, django_capture_on_commit_callbacks, client
):
    # given: an endpoint for issued invoices
    created = provider.post(
        "/v1/webhook_endpoints",
        {"url": receiver.url, "events": ["invoice.issued"], "description": "ERP"},
        format="json",
    )
    assert created.status_code == 201, created.content
    secret = created.json()["secret"]
    assert secret.startswith("whsec_")
    # when: an invoice is created issued, the seed's way
    today = timezone.localdate().isoformat()
    with django_capture_on_commit_callbacks(execute=True):
        response = provider.post(
            "/v1/invoices",
            {"customer_id": owner.account.pk, "amount": 120, "date": today, "due_date": today},
            format="json",
        )
    assert response.status_code == 201, response.content
    invoice = Invoice.objects.get(pk=response.json()["id"])

    # then: one e-mail, to the billing address, in the seller's name, PDF attached
    assert len(smtp.messages) == 1
    message = smtp.messages[0]
    assert message["To"] == owner.account.billing_email
    assert invoice.friendly_id in message["Subject"]
    assert message["Message-ID"].startswith("<msg_")
    parts = {part.get_content_type(): part for part in message.walk()}
    assert parts["application/pdf"].get_payload(decode=True).startswith(b"%PDF")
    text = parts["text/plain"].get_payload(decode=True).decode()
    link = next(word for word in text.split() if "/i/" in word)
    # ... whose hosted link opens the invoice without logging in
    page = client.get(link.split("localhost:8000", 1)[1])
    assert page.status_code == 200
    assert invoice.friendly_id in page.content.decode()

    # and one webhook, verified by the Standard Webhooks library
    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    payload = Webhook(secret).verify(request.body, request.headers)
    assert payload["type"] == "invoice.issued"
    assert payload["data"]["id"] == invoice.pk
    assert payload["data"]["status"] == "pending"
    assert json.loads(request.body)["data"]["number"] == invoice.friendly_id
    assert request.headers["webhook-id"] == f"msg_{invoice.notifications.get(channel='webhook').pk}"
    assert set(Notification.objects.values_list("state", flat=True)) == {"sent"}
