"""The hosted invoice page /i/<token>: no login, signed, revocable; the PDF; "Pay"."""

from __future__ import annotations

import pytest
from django.test import Client

from invoices.delivery.hosted import hosted_link_revoke, hosted_token
from invoices.models import Invoice, Notification, WebhookEndpoint
from tests.factories import AccountFactory, make_invoice

pytestmark = pytest.mark.django_db


def _path(invoice: Invoice) -> str:
    return f"/i/{hosted_token(invoice)}"


def test_the_page_shows_the_invoice_without_login(client):
    invoice = make_invoice(lines=[("2", "50.00")], state=Invoice.State.PENDING)
    response = client.get(_path(invoice))
    assert response.status_code == 200
    page = response.content.decode()
    assert invoice.friendly_id in page
    assert 'Amount due: <strong id="amount-due">100.00 USD' in page
    assert 'id="pay"' in page
    assert "https://" not in page  # no CDN: everything is served from here
    assert response["Cache-Control"] == "private, no-store"


def test_the_pdf_downloads(client):
    invoice = make_invoice(state=Invoice.State.PENDING)
    response = client.get(_path(invoice) + "/pdf")
    assert response.status_code == 200
    assert b"".join(response.streaming_content).startswith(b"%PDF")


def test_a_paid_invoice_shows_nothing_due_and_no_button(client):
    invoice = make_invoice(state=Invoice.State.PAID)
    page = client.get(_path(invoice)).content.decode()
    assert "0.00 USD" in page and 'id="pay"' not in page


def test_forged_revoked_and_draft_links_are_refused(client):
    invoice = make_invoice(state=Invoice.State.PENDING)
    token = hosted_token(invoice)
    assert client.get(f"/i/{token[:-2]}xx").status_code == 404
    hosted_link_revoke(invoice)
    assert client.get(f"/i/{token}").status_code == 404
    assert client.get(_path(invoice)).status_code == 200  # the new link works
    draft = make_invoice()
    assert client.get(_path(draft)).status_code == 404


def test_pay_with_a_test_card_pays_and_notifies(receiver, django_capture_on_commit_callbacks):
    WebhookEndpoint.objects.create(url=receiver.url, events=["invoice.paid"])
    account = AccountFactory(card_token="")  # no card on file: the page's card is used
    invoice = make_invoice(account=account, state=Invoice.State.PENDING)
    client = Client(enforce_csrf_checks=True)
    page = client.get(_path(invoice))
    csrf = page.cookies["csrftoken"].value
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            _path(invoice) + "/pay", {"card_token": "tok_mastercard", "csrfmiddlewaretoken": csrf}
        )
    assert response.status_code == 302 and response["Location"].endswith("?outcome=paid")
    invoice.refresh_from_db()
    assert invoice.state == Invoice.State.PAID
    assert invoice.successful_purchase().card_last4 == "4444"
    account.refresh_from_db()
    assert account.card_token == ""
    assert Notification.objects.filter(topic="receipt", state="sent").count() == 1
    assert [r.headers["webhook-id"] for r in receiver.requests] == [
        f"msg_{Notification.objects.get(topic='invoice.paid').pk}"
    ]


def test_a_declined_card_says_so(client):
    invoice = make_invoice(state=Invoice.State.PENDING)
    response = client.post(_path(invoice) + "/pay", {"card_token": "tok_chargeDeclined"})
    assert response["Location"].endswith("?outcome=declined")
    invoice.refresh_from_db()
    assert invoice.state == Invoice.State.UNPAID
    assert "declined" in client.get(response["Location"]).content.decode()


def test_pay_without_the_csrf_token_is_refused():
    invoice = make_invoice(state=Invoice.State.PENDING)
    client = Client(enforce_csrf_checks=True)
    assert client.post(_path(invoice) + "/pay", {"card_token": "tok_visa"}).status_code == 403
