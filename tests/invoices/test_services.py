"""The invoice services: editing rules, issuing, charging, retries, cancelling."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from accounts.services import account_soft_delete
from invoices import services
from invoices.exceptions import (
    AccountNotBillable,
    ChargeFailed,
    InvalidInvoiceTransition,
    InvoiceLocked,
    InvoiceNotChargeable,
    InvoiceValidationError,
)
from invoices.models import Invoice, InvoiceEvent, PaymentTransaction
from tests.factories import AccountFactory, make_invoice

S = Invoice.State
NOW = dt.datetime(2026, 11, 3, 10, tzinfo=dt.UTC)


@pytest.mark.django_db
class TestEditing:
    def test_lines_recompute_totals_with_vat(self):
        account = AccountFactory(currency="EUR", vat_rate=Decimal("21"))
        invoice = make_invoice(account=account, lines=[("3", "9.99"), ("1", "0.005")])
        assert invoice.cost_without_vat == Decimal("29.98")  # 29.97 + 0.01
        assert invoice.vat_amount == Decimal("6.30")  # 6.2958 rounds half-up
        assert invoice.cost == Decimal("36.28")

    def test_cost_given_as_line_total(self):
        invoice = make_invoice(lines=[])
        line = services.line_item_add(
            invoice=invoice, name="Support", quantity=Decimal(3), cost=Decimal("10"), actor="t"
        )
        assert line.cost == Decimal("10.00")

    def test_remove_line(self):
        invoice = make_invoice(lines=[("1", "5"), ("1", "7")])
        services.line_item_remove(line_item=invoice.line_items.first(), actor="t")
        invoice.refresh_from_db()
        assert invoice.cost == Decimal("7.00")
        assert (
            list(invoice.events.values_list("kind", flat=True))[-1]
            == InvoiceEvent.Kind.LINE_REMOVED
        )

    @pytest.mark.parametrize(
        ("quantity", "price", "field"),
        [
            ("0", "1", "quantity"),
            ("-1", "1", "quantity"),
            ("1", "-5", "unit_price"),
            ("1", "1e13", "unit_price"),
            ("1.00001", "1", "quantity"),
        ],
    )
    def test_bad_line_values(self, quantity, price, field):
        invoice = make_invoice(lines=[])
        with pytest.raises(InvoiceValidationError) as err:
            services.line_item_add(
                invoice=invoice,
                name="x",
                quantity=Decimal(quantity),
                unit_price=Decimal(price),
                actor="t",
            )
        assert err.value.field == field
        assert invoice.line_items.count() == 0

    def test_finalized_invoice_is_still_editable(self):
        invoice = make_invoice(state=S.FINALIZED)
        services.line_item_add(invoice=invoice, name="late fee", unit_price=Decimal("1"), actor="t")
        invoice.refresh_from_db()
        assert invoice.cost == Decimal("101.00")


@pytest.mark.django_db
@pytest.mark.parametrize("state", [S.PENDING, S.UNPAID, S.PAID, S.FAILED, S.CANCELLED])
def test_issued_or_cancelled_invoice_refuses_every_change(state):
    # given
    invoice = make_invoice(state=state, lines=[("2", "10")])
    snapshot = Invoice.objects.values().get(pk=invoice.pk)
    lines = list(invoice.line_items.values())
    # when / then
    with pytest.raises(InvoiceLocked):
        services.line_item_add(invoice=invoice, name="x", unit_price=Decimal("1"), actor="t")
    with pytest.raises(InvoiceLocked):
        services.line_item_remove(line_item=invoice.line_items.first(), actor="t")
    with pytest.raises(InvoiceLocked):
        services.invoice_update(invoice=invoice, period=dt.date(2026, 1, 1), actor="t")
    with pytest.raises(InvoiceLocked):
        services.invoice_update(invoice=invoice, friendly_id="2026-01-00000099", actor="t")
    with pytest.raises(InvoiceLocked):
        services.invoice_recompute(invoice=invoice, actor="t")
    with pytest.raises(InvoiceLocked):
        services.invoice_delete(invoice=invoice, actor="t")
    # then nothing moved
    assert Invoice.objects.values().get(pk=invoice.pk) == snapshot
    assert list(invoice.line_items.values()) == lines


@pytest.mark.django_db
def test_issue_freezes_terms_parties_and_dates():
    account = AccountFactory(currency="EUR", vat_rate=Decimal("10"), payment_terms_days=14)
    invoice = make_invoice(account=account, lines=[("1", "100")])
    invoice = services.invoice_issue(invoice=invoice, actor="t", now=NOW)
    assert (invoice.issued_on, invoice.due_on) == (dt.date(2026, 11, 3), dt.date(2026, 11, 17))
    assert invoice.cost == Decimal("110.00")
    assert invoice.buyer_details["org_name"] == account.org_name
    assert invoice.seller_details["name"]
    # later changes to the account do not reach the issued invoice
    account.vat_rate = Decimal("25")
    account.currency = "USD"
    account.org_name = "Renamed"
    account.save()
    invoice.refresh_from_db()
    assert (invoice.vat_rate, invoice.currency, invoice.cost) == (
        Decimal("10"),
        "EUR",
        Decimal("110.00"),
    )
    assert invoice.buyer_details["org_name"] != "Renamed"


@pytest.mark.django_db
def test_default_payment_terms_are_30_days():
    invoice = services.invoice_issue(invoice=make_invoice(), actor="t", now=NOW)
    assert invoice.due_on - invoice.issued_on == dt.timedelta(days=30)


@pytest.mark.django_db
def test_delete_only_open():
    invoice = make_invoice()
    services.invoice_delete(invoice=invoice, actor="t")
    assert not Invoice.objects.filter(pk=invoice.pk).exists()


@pytest.mark.django_db
class TestCharge:
    def test_successful_charge_pays_once(self):
        invoice = make_invoice(state=S.PENDING)
        invoice = services.invoice_charge(invoice=invoice, actor="t")
        assert invoice.state == S.PAID
        payment = invoice.payment_transactions.get()
        assert (payment.success, payment.amount, payment.card_last4, payment.test) == (
            True,
            invoice.cost,
            "4242",
            True,
        )
        with pytest.raises(
            InvoiceNotChargeable, match=f"Invoice {invoice.pk} is not in chargeable state!"
        ):
            services.invoice_charge(invoice=invoice, actor="t")
        assert invoice.payment_transactions.count() == 1

    @pytest.mark.parametrize("state", [S.OPEN, S.FINALIZED, S.PAID, S.CANCELLED])
    def test_not_chargeable(self, state):
        with pytest.raises(InvoiceNotChargeable):
            services.invoice_charge(invoice=make_invoice(state=state), actor="t")

    def test_automatic_retries_then_failed(self):
        # given a card that is always declined
        account = AccountFactory(card_token="tok_chargeDeclined")
        invoice = services.invoice_issue(invoice=make_invoice(account=account), actor="t", now=NOW)
        states = []
        # when the daily job charges it three times, three days apart
        for attempt in range(3):
            with pytest.raises(ChargeFailed):
                services.invoice_charge(
                    invoice=invoice,
                    actor="job",
                    automatic=True,
                    now=NOW + dt.timedelta(days=30 + 3 * attempt),
                )
            invoice.refresh_from_db()
            states.append((invoice.state, invoice.charge_attempts))
        # then it is unpaid twice, failed after the third failure, every attempt recorded
        assert states == [(S.UNPAID, 1), (S.UNPAID, 2), (S.FAILED, 3)]
        assert invoice.payment_transactions.filter(success=False).count() == 3

    def test_manual_charge_failure_does_not_count(self):
        account = AccountFactory(card_token="")
        invoice = make_invoice(account=account, state=S.PENDING)
        with pytest.raises(ChargeFailed):
            services.invoice_charge(invoice=invoice, actor="t")
        invoice.refresh_from_db()
        assert (invoice.state, invoice.charge_attempts) == (S.UNPAID, 0)

    def test_failed_invoice_can_still_be_paid(self):
        invoice = make_invoice(state=S.FAILED)
        invoice = services.invoice_charge(invoice=invoice, actor="t")
        assert invoice.state == S.PAID

    def test_mark_paid_records_bank_transfer(self):
        invoice = services.invoice_mark_paid(
            invoice=make_invoice(state=S.PENDING), actor="t", reference="SEPA-1"
        )
        payment = invoice.payment_transactions.get()
        assert (invoice.state, payment.method, payment.reference) == (
            S.PAID,
            "bank_transfer",
            "SEPA-1",
        )

    def test_database_allows_one_successful_purchase(self):
        invoice = services.invoice_charge(invoice=make_invoice(state=S.PENDING), actor="t")
        with pytest.raises(IntegrityError), transaction.atomic():
            PaymentTransaction.objects.create(
                invoice=invoice,
                account=invoice.account,
                amount=Decimal("1"),
                currency="USD",
                success=True,
            )


@pytest.mark.django_db
def test_soft_deleted_account_keeps_its_invoices():
    # given an account with an issued invoice and a draft
    account = AccountFactory()
    issued = make_invoice(account=account, state=S.PAID)
    draft = make_invoice(account=account)
    # when it is deleted
    account_soft_delete(account=account)
    # then its invoices remain, with the frozen buyer details
    account.refresh_from_db()
    assert account.state == "deleted" and account.deleted_at is not None
    issued.refresh_from_db()
    assert issued.buyer_details["org_name"] == account.org_name
    assert Invoice.objects.filter(account=account).count() == 2
    # and it can no longer be billed
    with pytest.raises(AccountNotBillable):
        services.invoice_issue(invoice=draft, actor="t")
    with pytest.raises(AccountNotBillable):
        services.invoice_create(account=account, actor="t")


@pytest.mark.django_db
def test_invoice_events_are_append_only_in_the_database():
    invoice = make_invoice()
    event = invoice.events.first()
    with pytest.raises(ValueError):
        event.save()
    with pytest.raises(Exception, match="append-only"), transaction.atomic():
        InvoiceEvent.objects.filter(pk=event.pk).update(reason="rewritten")


@pytest.mark.django_db
def test_database_rejects_broken_totals():
    invoice = make_invoice()
    with pytest.raises(IntegrityError), transaction.atomic():
        Invoice.objects.filter(pk=invoice.pk).update(cost=Decimal("1"))


@pytest.mark.django_db
def test_one_background_invoice_per_account_and_month():
    account = AccountFactory()
    services.invoice_create(
        account=account, period=dt.date(2026, 10, 1), creation_type="background", actor="t"
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        services.invoice_create(
            account=account, period=dt.date(2026, 10, 1), creation_type="background", actor="t"
        )


@pytest.mark.django_db
def test_invalid_transition_leaves_no_partial_write():
    invoice = make_invoice(state=S.PAID)
    with pytest.raises(InvalidInvoiceTransition):
        services.invoice_cancel(invoice=invoice, actor="t")
    invoice.refresh_from_db()
    assert invoice.state == S.PAID and invoice.cancelled_at is None
