"""Recorded payments: partial, whole, too much; card purchases stay one per invoice."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from accounts.models import AccountCreditEntry
from accounts.selectors import account_credit_balance
from invoices import services
from invoices.exceptions import InvalidInvoiceTransition, InvoiceValidationError
from invoices.models import Invoice, InvoiceEvent, PaymentTransaction
from tests.factories import AccountFactory, make_invoice

S = Invoice.State
D = Decimal
TODAY = dt.date.today()
pytestmark = pytest.mark.django_db


def pay(invoice: Invoice, amount: str, **kwargs) -> PaymentTransaction:
    return services.invoice_payment_record(
        invoice=invoice, amount=D(amount), paid_on=kwargs.pop("paid_on", TODAY), actor="t", **kwargs
    )


def transitions(invoice: Invoice) -> list[str]:
    return list(
        invoice.events.filter(kind=InvoiceEvent.Kind.TRANSITION).values_list("to_state", flat=True)
    )


def test_unpaid_invoice_paid_in_two_parts_becomes_paid_on_the_second():
    invoice = make_invoice(state=S.UNPAID)  # 100.00
    pay(invoice, "40.00", method="cheque", reference="CHQ-1")
    invoice.refresh_from_db()
    assert (invoice.state, invoice.amount_paid, invoice.amount_due()) == (
        S.UNPAID,
        D("40"),
        D("60"),
    )
    assert invoice.events.filter(kind=InvoiceEvent.Kind.PAYMENT_RECORDED).count() == 1
    assert S.PAID not in transitions(invoice)

    pay(invoice, "60.00", method="bank_transfer", reference="TRX-2")
    invoice.refresh_from_db()
    assert (invoice.state, invoice.amount_paid, invoice.amount_due()) == (S.PAID, D("100"), D("0"))
    assert transitions(invoice).count(S.PAID) == 1
    # the second payment is told by the transition event alone
    assert invoice.events.filter(kind=InvoiceEvent.Kind.PAYMENT_RECORDED).count() == 1
    payments = list(invoice.payment_transactions.order_by("id"))
    assert [(p.action, p.amount, p.method, p.paid_on) for p in payments] == [
        ("payment", D("40"), "cheque", TODAY),
        ("payment", D("60"), "bank_transfer", TODAY),
    ]


def test_overpayment_goes_to_the_credit_balance_and_the_next_invoice_consumes_it():
    account = AccountFactory()
    invoice = make_invoice(account=account, state=S.PENDING)
    pay(invoice, "130.00")
    invoice.refresh_from_db()
    assert (invoice.state, invoice.amount_paid) == (S.PAID, D("100"))
    assert account_credit_balance(account, "USD") == D("30")
    assert AccountCreditEntry.objects.get(account=account).kind == "overpayment"

    following = make_invoice(account=account, lines=[("1", "50.00")], state=S.PENDING)
    assert (following.credit_applied, following.amount_due()) == (D("30"), D("20"))
    assert account_credit_balance(account, "USD") == D("0")
    # a third one finds nothing left
    third = make_invoice(account=account, state=S.PENDING)
    assert (third.credit_applied, third.amount_due()) == (D("0"), D("100"))


def test_credit_balance_is_kept_per_currency_and_given_back_on_cancel():
    account = AccountFactory()
    pay(make_invoice(account=account, state=S.PENDING), "110.00")
    invoice = make_invoice(account=account, lines=[("1", "5.00")], state=S.PENDING)
    assert invoice.credit_applied == D("5")
    assert account_credit_balance(account, "USD") == D("5")
    assert account_credit_balance(account, "EUR") == D("0")
    services.invoice_cancel(invoice=invoice, actor="t")
    assert account_credit_balance(account, "USD") == D("10")


def test_charge_takes_only_what_is_due():
    invoice = make_invoice(state=S.PENDING)
    pay(invoice, "25.00")
    invoice = services.invoice_charge(invoice=invoice, actor="t")
    purchase = invoice.payment_transactions.get(action="purchase")
    assert (invoice.state, purchase.amount, invoice.amount_paid) == (S.PAID, D("75"), D("100"))


def test_mark_paid_settles_what_is_left():
    invoice = make_invoice(state=S.UNPAID)
    pay(invoice, "10.00")
    invoice = services.invoice_mark_paid(invoice=invoice, actor="t")
    assert invoice.payment_transactions.get(action="purchase").amount == D("90")
    assert (invoice.amount_paid, invoice.amount_due()) == (D("100"), D("0"))


@pytest.mark.parametrize(
    ("amount", "fields", "field"),
    [
        ("0", {}, "amount"),
        ("-5", {}, "amount"),
        ("1.001", {}, "amount"),
        ("10", {"method": "credit_card"}, "method"),
        ("10", {"paid_on": TODAY + dt.timedelta(days=5)}, "paid_on"),
        ("10", {"paid_on": dt.date(1999, 12, 31)}, "paid_on"),
    ],
)
def test_bad_payments_are_refused_and_write_nothing(amount, fields, field):
    invoice = make_invoice(state=S.UNPAID)
    events = invoice.events.count()
    with pytest.raises(InvoiceValidationError) as caught:
        pay(invoice, amount, **fields)
    assert caught.value.field == field
    invoice.refresh_from_db()
    assert (invoice.amount_paid, invoice.payment_transactions.count()) == (D("0"), 0)
    assert invoice.events.count() == events


@pytest.mark.parametrize("state", [S.OPEN, S.FINALIZED, S.PAID, S.CANCELLED])
def test_only_outstanding_invoices_take_payments(state):
    invoice = make_invoice(state=state)
    with pytest.raises(InvalidInvoiceTransition):
        pay(invoice, "10")
    assert not invoice.payment_transactions.exists()


def test_an_invoice_with_payments_cannot_be_cancelled():
    invoice = make_invoice(state=S.UNPAID)
    pay(invoice, "10")
    with pytest.raises(InvalidInvoiceTransition):
        services.invoice_cancel(invoice=invoice, actor="t")


def test_recorded_payments_are_many_but_card_purchases_stay_unique():
    invoice = make_invoice(state=S.UNPAID)
    pay(invoice, "10")
    pay(invoice, "10")
    fields = {"invoice": invoice, "account": invoice.account, "currency": "USD", "success": True}
    PaymentTransaction.objects.create(amount=D("1"), action="purchase", **fields)
    with pytest.raises(IntegrityError), transaction.atomic():
        PaymentTransaction.objects.create(amount=D("1"), action="purchase", **fields)


def test_database_keeps_what_is_settled_within_the_total():
    invoice = make_invoice(state=S.UNPAID)
    with pytest.raises(IntegrityError), transaction.atomic():
        Invoice.objects.filter(pk=invoice.pk).update(amount_paid=D("100.01"))
