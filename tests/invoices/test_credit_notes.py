"""Credit notes: numbering, VAT, never beyond the invoice, and where the money goes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from accounts.selectors import account_credit_balance
from billing.lib.money import vat_amount
from invoices import services
from invoices.exceptions import InvoiceLocked, InvoiceValidationError, RefundFailed
from invoices.gateways import GatewayResult, TestGateway
from invoices.models import CreditNote, Invoice, InvoiceCounter, InvoiceEvent
from tests.factories import AccountFactory, make_invoice
from tests.invoices.tax_cases import issued_invoice

S = Invoice.State
D = Decimal
pytestmark = pytest.mark.django_db


def credit(invoice: Invoice, **kwargs) -> CreditNote:
    return services.credit_note_create(
        invoice=invoice, reason=kwargs.pop("reason", "wrong quantity"), actor="t", **kwargs
    )


def assert_identities(note: CreditNote) -> None:
    assert note.cost == note.cost_without_vat + note.vat_amount
    assert note.cost == note.amount_due_reduced + note.amount_refunded + note.amount_to_balance
    assert note.cost_without_vat == sum((line.cost for line in note.lines.all()), D(0))
    invoice = Invoice.objects.get(pk=note.invoice_id)
    credited = sum((n.cost for n in invoice.credit_notes.all()), D(0))
    assert invoice.amount_credited == credited <= invoice.cost
    assert invoice.amount_due() >= 0


def vat_account():
    return AccountFactory(vat_rate=D("21"), vat_code="ES123")


def test_paid_invoice_credited_in_part_and_refunded_through_the_gateway(
    django_capture_on_commit_callbacks,
):
    invoice = make_invoice(account=vat_account(), lines=[("4", "25.00")], state=S.PENDING)
    invoice = services.invoice_charge(invoice=invoice, actor="t")  # 121.00 by card
    assert (invoice.state, invoice.amount_paid) == (S.PAID, D("121"))
    line = invoice.line_items.get()

    with django_capture_on_commit_callbacks(execute=True):
        note = credit(invoice, lines=[services.CreditLine(line.pk, D("1"))], refund=True)

    year = dt.date.today().year
    assert note.number == f"CN-{year}-00000001"
    assert (note.cost_without_vat, note.vat_amount, note.cost) == (D("25"), D("5.25"), D("30.25"))
    assert (note.amount_refunded, note.amount_due_reduced, note.amount_to_balance) == (
        D("30.25"),
        D("0"),
        D("0"),
    )
    assert note.buyer_details == invoice.buyer_details
    assert note.seller_details == invoice.seller_details
    assert note.vat_rate == invoice.vat_rate
    refund = invoice.payment_transactions.get(action="refund")
    assert (refund.success, refund.amount, refund.reference[:8]) == (True, D("30.25"), "re_test_")
    invoice.refresh_from_db()
    assert (invoice.state, invoice.amount_paid, invoice.amount_credited) == (
        S.PAID,
        D("90.75"),
        D("30.25"),
    )
    assert invoice.amount_due() == 0
    assert invoice.events.filter(kind=InvoiceEvent.Kind.CREDIT_NOTE).count() == 1
    assert_identities(note)
    note.refresh_from_db()
    assert note.pdf.name.endswith(".pdf")  # rendered after commit
    assert InvoiceCounter.objects.get(series=f"CN-{year}").last_number == 1


def test_paid_invoice_credit_without_refund_goes_to_the_balance_then_the_next_invoice():
    account = AccountFactory()
    invoice = make_invoice(account=account, state=S.PAID)
    note = credit(invoice, amount=D("40.00"))
    assert (note.amount_to_balance, note.amount_refunded) == (D("40"), D("0"))
    assert account_credit_balance(account, "USD") == D("40")
    following = make_invoice(account=account, state=S.PENDING)
    assert (following.credit_applied, following.amount_due()) == (D("40"), D("60"))
    assert_identities(note)


def test_unpaid_invoice_credit_reduces_what_is_due_and_in_full_settles_it():
    invoice = make_invoice(state=S.UNPAID)
    first = credit(invoice, amount=D("30"))
    invoice.refresh_from_db()
    assert (first.amount_due_reduced, invoice.amount_due(), invoice.state) == (
        D("30"),
        D("70"),
        S.UNPAID,
    )
    second = credit(invoice, amount=D("70"))
    invoice.refresh_from_db()
    assert (invoice.amount_due(), invoice.state) == (D("0"), S.PAID)
    assert second.number.endswith("-00000002")
    with pytest.raises(InvoiceValidationError) as caught:
        credit(invoice, amount=D("0.01"))
    assert caught.value.field == "amount"
    for note in (first, second):
        assert_identities(note)


def test_partly_paid_invoice_credit_reduces_due_first_then_refunds_or_credits():
    account = AccountFactory()
    invoice = make_invoice(account=account, state=S.UNPAID)
    services.invoice_payment_record(
        invoice=invoice, amount=D("60"), paid_on=dt.date.today(), actor="t"
    )
    note = credit(invoice, amount=D("50"))
    assert (note.amount_due_reduced, note.amount_to_balance) == (D("40"), D("10"))
    invoice.refresh_from_db()
    assert (invoice.state, invoice.amount_paid, invoice.amount_due()) == (S.PAID, D("50"), D("0"))
    assert account_credit_balance(account, "USD") == D("10")
    # a bank payment cannot be refunded through the gateway
    with pytest.raises(InvoiceValidationError) as caught:
        credit(invoice, amount=D("5"), refund=True)
    assert caught.value.field == "refund"
    assert_identities(note)


def test_whole_invoice_credited_in_pieces_adds_up_exactly():
    # 3 x 0.10 at 21%: VAT of each piece rounds up, the last takes what is left
    invoice = make_invoice(
        account=vat_account(), lines=[("1", "0.10"), ("1", "0.10"), ("1", "0.10")], state=S.UNPAID
    )
    assert (invoice.cost_without_vat, invoice.vat_amount) == (D("0.30"), D("0.06"))
    notes = [credit(invoice, lines=[services.CreditLine(line.pk, D("1"))])
             for line in invoice.line_items.all()]  # fmt: skip
    invoice.refresh_from_db()
    assert sum((n.cost for n in notes), D(0)) == invoice.cost == invoice.amount_credited
    assert sum((n.vat_amount for n in notes), D(0)) == invoice.vat_amount
    for note in notes:
        assert_identities(note)


def test_line_credit_never_exceeds_the_line():
    invoice = make_invoice(lines=[("3", "10.00")], state=S.PENDING)
    line = invoice.line_items.get()
    credit(invoice, lines=[services.CreditLine(line.pk, D("2"))])
    with pytest.raises(InvoiceValidationError) as caught:
        credit(invoice, lines=[services.CreditLine(line.pk, D("2"))])
    assert caught.value.field == "lines[0].quantity"
    with pytest.raises(InvoiceValidationError) as caught:
        credit(invoice, lines=[services.CreditLine(line.pk + 999, D("1"))])
    assert caught.value.field == "lines[0].line_item_id"
    assert CreditNote.objects.filter(invoice=invoice).count() == 1


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"amount": D("0")}, "amount"),
        ({"amount": D("-1")}, "amount"),
        ({"amount": D("100.01")}, "amount"),
        ({"amount": D("1.001")}, "amount"),
        ({"amount": D("1"), "reason": "  "}, "reason"),
        ({}, "amount"),
        ({"amount": D("1"), "lines": []}, "amount"),
        ({"lines": []}, "lines"),
        ({"amount": D("10"), "refund": True}, "refund"),  # nothing paid to refund
    ],
)
def test_bad_credit_notes_write_nothing(kwargs, field):
    invoice = make_invoice(state=S.UNPAID)
    with pytest.raises(InvoiceValidationError) as caught:
        credit(invoice, **kwargs)
    assert caught.value.field == field
    assert not CreditNote.objects.exists()
    assert not InvoiceCounter.objects.filter(series__startswith="CN").exists()
    invoice.refresh_from_db()
    assert invoice.amount_credited == 0


@pytest.mark.parametrize("state", [S.OPEN, S.FINALIZED, S.CANCELLED])
def test_only_issued_invoices_are_credited(state):
    with pytest.raises(InvoiceLocked):
        credit(make_invoice(state=state), amount=D("1"))


class DecliningGateway(TestGateway):
    def refund(self, **kwargs) -> GatewayResult:
        return GatewayResult(success=False, reference="re_x", message="too old", test=True)


def test_refused_refund_writes_nothing():
    invoice = services.invoice_charge(invoice=make_invoice(state=S.PENDING), actor="t")
    with pytest.raises(RefundFailed):
        credit(invoice, amount=D("10"), refund=True, gateway=DecliningGateway())
    assert not CreditNote.objects.exists()
    assert not invoice.payment_transactions.filter(action="refund").exists()
    invoice.refresh_from_db()
    assert (invoice.amount_paid, invoice.amount_credited) == (D("100"), D("0"))


@pytest.mark.parametrize("case", ["reverse_charge", "eu_consumer"])
def test_credit_note_keeps_the_invoices_frozen_tax_treatment(case, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    invoice = issued_invoice(case)
    note = credit(invoice, amount=D("10.00"))
    assert (note.tax_treatment, note.tax_category, note.tax_mention, note.vat_rate) == (
        invoice.tax_treatment,
        invoice.tax_category,
        invoice.tax_mention,
        invoice.vat_rate,
    )
    assert note.vat_amount == vat_amount_of(D("10.00"), invoice)
    assert_identities(note)


def vat_amount_of(net: Decimal, invoice: Invoice) -> Decimal:
    return vat_amount(net, invoice.vat_rate, invoice.currency)
