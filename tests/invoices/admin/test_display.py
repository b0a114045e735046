"""What the invoice page shows: numbers as written, parties as addresses, events as
sentences; and the clerk's state labels, which never reach an API."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from invoices.admin.display import event_sentence, party_block, plain_number, timeline_html
from invoices.models import Invoice, InvoiceEvent
from tests.factories import make_invoice

S = Invoice.State


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("801.0000", "801"),
        ("0.04160000", "0.0416"),
        ("12.5000", "12.5"),
        ("1500.0000", "1,500"),
        ("0E-8", "0"),
    ],
)
def test_plain_number(stored, shown):
    assert plain_number(Decimal(stored)) == shown


def test_state_labels_are_the_clerks_and_values_are_3scales():
    assert {state.value: state.label for state in S} == {
        "open": "Draft",
        "finalized": "Finalized",
        "pending": "Awaiting payment",
        "unpaid": "Payment failed",
        "paid": "Paid",
        "failed": "Failed",
        "cancelled": "Cancelled",
    }


def test_party_block_is_an_address_not_json():
    html = party_block(
        {
            "org_name": "Acme <GmbH>",
            "address_line1": "Hauptstr. 1",
            "zip": "10115",
            "city": "Berlin",
            "country": "Germany",
            "vat_code": "DE811907980",
            "email": "ap@acme.test",
        }
    )
    assert "Acme &lt;GmbH&gt;<br>Hauptstr. 1<br>10115 Berlin<br>Germany" in html
    assert "<dt>VAT id</dt><dd>DE811907980</dd>" in html
    assert "{" not in html
    assert "frozen" in party_block({})


def event(kind, **fields):
    return InvoiceEvent(kind=kind, actor=fields.pop("actor", "staff:ana"), **fields)


@pytest.mark.parametrize(
    ("built", "sentence"),
    [
        (event("created"), "created the draft"),
        (
            event(
                "transition", from_state="open", to_state="pending", data={"due_on": "2026-12-30"}
            ),
            "moved it from Draft to Awaiting payment, due 2026-12-30",
        ),
        (
            event("line_added", data={"name": "Support", "cost": "12.5000"}),
            "added the line “Support” (EUR 12.50)",
        ),
        (
            event("charge_failed", data={"message": "Card declined", "reference": "ch_1"}),
            "tried to charge the card: declined (Card declined)",
        ),
        (
            event("transition", from_state="pending", to_state="paid", data={"reference": "ch_9"}),
            "moved it from Awaiting payment to Paid, reference ch_9",
        ),
    ],
)
def test_event_sentences(built, sentence):
    assert event_sentence(built, "EUR") == sentence


@pytest.mark.django_db
def test_timeline_says_who_when_what_why(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    from invoices import services

    invoice = make_invoice(state=S.PENDING)
    services.invoice_cancel(
        invoice=invoice, actor="staff:ana", reason="Ordered twice", now=dt.datetime.now(dt.UTC)
    )
    html = timeline_html(invoice)
    assert "<strong>ana</strong> moved it from Awaiting payment to Cancelled." in html
    assert "Reason: Ordered twice." in html
