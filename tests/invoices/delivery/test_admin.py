"""Delivery in the admin: the invoice's messages in its page, resend, endpoints, attempts."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group

from invoices import services
from invoices.delivery.hosted import hosted_token
from invoices.models import Invoice, Notification, WebhookEndpoint
from tests.factories import make_invoice

pytestmark = pytest.mark.django_db


@pytest.fixture
def finance(client, django_user_model):
    user = django_user_model.objects.create_user("fin", password="pw-123456789", is_staff=True)
    user.groups.add(Group.objects.get(name="Finance"))
    client.force_login(user)
    return client


def test_the_invoice_page_lists_its_messages(finance):
    invoice = make_invoice(state=Invoice.State.PENDING)
    page = finance.get(f"/admin/invoices/invoice/{invoice.pk}/change/").content.decode()
    assert "Messages (e-mails and webhooks)" in page
    assert "invoice_issued" in page


def test_finance_resends_a_failed_message(finance, django_capture_on_commit_callbacks, mailoutbox):
    make_invoice(state=Invoice.State.PENDING)
    email = Notification.objects.get(channel="email")
    Notification.objects.filter(pk=email.pk).update(state="failed", last_error="SMTP down")
    with django_capture_on_commit_callbacks(execute=True):
        response = finance.post(
            "/admin/invoices/notification/",
            {"action": "resend_notifications", "_selected_action": [email.pk]},
        )
    assert response.status_code == 302
    email.refresh_from_db()
    assert email.state == "sent"
    assert len(mailoutbox) == 1


def test_finance_sees_a_disabled_endpoint_and_its_attempts(finance):
    WebhookEndpoint.objects.create(
        url="https://example.com/h", events=["*"], enabled=False, disabled_reason="failing for 3d"
    )
    assert "failing for 3d" in finance.get("/admin/invoices/webhookendpoint/").content.decode()
    assert finance.get("/admin/invoices/webhookattempt/").status_code == 200


def test_finance_revokes_the_hosted_links(finance, client):
    invoice = make_invoice(state=Invoice.State.PENDING)
    token = hosted_token(invoice)
    finance.post(
        "/admin/invoices/invoice/",
        {"action": "revoke_hosted_links", "_selected_action": [invoice.pk]},
    )
    assert client.get(f"/i/{token}").status_code == 404


def test_finance_sees_a_credit_notes_link_and_revokes_it(finance, client):
    invoice = make_invoice(state=Invoice.State.PENDING)
    note = services.credit_note_create(
        invoice=invoice, reason="Goodwill", amount=Decimal("10.00"), actor="test"
    )
    page = finance.get(f"/admin/invoices/creditnote/{note.pk}/change/").content.decode()
    # the page shows the note's link (signed now: compared by what it opens)
    [path] = re.findall(r'href="http://localhost:8000(/i/[^"]+)"', page)
    assert note.number in client.get(path).content.decode()
    assert note.number in finance.get("/admin/invoices/creditnote/?q=CN").content.decode()
    response = finance.post(
        "/admin/invoices/creditnote/",
        {"action": "revoke_credit_note_links", "_selected_action": [note.pk]},
    )
    assert response.status_code == 302
    assert client.get(path).status_code == 404
    assert client.get(f"/i/{hosted_token(invoice)}").status_code == 200  # the invoice's stays


def test_the_auditor_cannot_revoke_a_credit_notes_link(client, django_user_model):
    user = django_user_model.objects.create_user("aud", password="pw-123456789", is_staff=True)
    user.groups.add(Group.objects.get(name="Auditor"))
    client.force_login(user)
    invoice = make_invoice(state=Invoice.State.PENDING)
    note = services.credit_note_create(
        invoice=invoice, reason="Goodwill", amount=Decimal("10.00"), actor="test"
    )
    token = hosted_token(note)
    assert client.get("/admin/invoices/creditnote/").status_code == 200
    client.post(
        "/admin/invoices/creditnote/",
        {"action": "revoke_credit_note_links", "_selected_action": [note.pk]},
    )
    client.logout()
    assert client.get(f"/i/{token}").status_code == 200
