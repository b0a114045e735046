"""Every move of 3scale's state map: the allowed ones succeed, the rest raise."""

from __future__ import annotations

import itertools

import pytest

from invoices import services
from invoices.exceptions import InvalidInvoiceTransition
from invoices.models import Invoice, InvoiceEvent
from tests.factories import make_invoice

S = Invoice.State
ALLOWED = {
    (S.OPEN, S.FINALIZED),
    (S.OPEN, S.PENDING),
    (S.OPEN, S.CANCELLED),
    (S.FINALIZED, S.PENDING),
    (S.FINALIZED, S.CANCELLED),
    (S.PENDING, S.UNPAID),
    (S.PENDING, S.PAID),
    (S.PENDING, S.CANCELLED),
    (S.UNPAID, S.PAID),
    (S.UNPAID, S.FAILED),
    (S.UNPAID, S.CANCELLED),
    (S.FAILED, S.PAID),
    (S.FAILED, S.CANCELLED),
}
ALL_PAIRS = list(itertools.product(S.values, S.values))


def test_map_in_code_is_3scale_map():
    in_code = {(src, dst) for dst, sources in Invoice.TRANSITIONS.items() for src in sources}
    assert in_code == ALLOWED


@pytest.mark.django_db
@pytest.mark.parametrize(("from_state", "to_state"), sorted(ALLOWED))
def test_allowed_transition(from_state, to_state):
    # given
    invoice = make_invoice(state=from_state)
    events_before = invoice.events.count()
    # when
    invoice = services.invoice_transition(
        invoice=invoice, to_state=to_state, actor="tester", reason="why"
    )
    # then
    invoice.refresh_from_db()
    assert invoice.state == to_state
    event = invoice.events.order_by("-id").first()
    assert invoice.events.count() == events_before + 1
    assert (event.kind, event.from_state, event.to_state, event.actor, event.reason) == (
        InvoiceEvent.Kind.TRANSITION,
        from_state,
        to_state,
        "tester",
        "why",
    )
    if to_state != S.CANCELLED:
        assert invoice.friendly_id
    if to_state == S.PAID:
        assert invoice.paid_at is not None
    if to_state in Invoice.ISSUED_STATES:
        assert invoice.issued_on and invoice.due_on


@pytest.mark.django_db
@pytest.mark.parametrize(("from_state", "to_state"), sorted(set(ALL_PAIRS) - ALLOWED))
def test_forbidden_transition(from_state, to_state):
    invoice = make_invoice(state=from_state)
    before = Invoice.objects.values().get(pk=invoice.pk)
    events_before = invoice.events.count()
    with pytest.raises(InvalidInvoiceTransition, match=f"Cannot transition to {to_state}"):
        services.invoice_transition(invoice=invoice, to_state=to_state, actor="tester")
    assert Invoice.objects.values().get(pk=invoice.pk) == before
    assert invoice.events.count() == events_before


@pytest.mark.django_db
def test_unknown_target_state_is_refused():
    invoice = make_invoice()
    with pytest.raises(InvalidInvoiceTransition, match="Cannot transition to issue"):
        services.invoice_transition(invoice=invoice, to_state="issue", actor="tester")
