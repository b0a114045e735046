"""Workers racing for the same outbox rows on PostgreSQL: each message goes out once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections

from invoices import services
from invoices.delivery import outbox
from invoices.delivery.endpoints import webhook_endpoint_create
from invoices.models import Notification
from tests.factories import make_invoice

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_racing_workers_send_each_message_once(receiver, smtp):
    webhook_endpoint_create(url=receiver.url, events=["*"])
    invoices = [make_invoice() for _ in range(5)]
    for invoice in invoices:
        services.invoice_issue(invoice=invoice, actor="test")  # inline sends, one by one
    Notification.objects.update(state="pending", sent_at=None)  # all due again
    before_hooks, before_mails = len(receiver.requests), len(smtp.messages)
    ids = list(Notification.objects.values_list("pk", flat=True))

    def worker(_: int) -> list[str]:
        try:
            return [outbox.notification_send(pk) for pk in ids]
        finally:
            connections.close_all()

    # when: six workers try to send every row at the same time
    with ThreadPoolExecutor(6) as pool:
        outcomes = [o for result in pool.map(worker, range(6)) for o in result]

    # then: each row was sent by exactly one of them
    assert outcomes.count("sent") == len(ids)
    webhooks = Notification.objects.filter(channel="webhook").count()
    emails = Notification.objects.filter(channel="email").count()
    assert len(receiver.requests) - before_hooks == webhooks
    assert len(smtp.messages) - before_mails == emails
