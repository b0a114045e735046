"""Every change to an invoice goes through one of these functions.

APIs, admin actions, commands and tasks all call them, so there is exactly one
`invoice_issue`, whoever asks for it.

Locks are taken in one fixed order to rule out deadlocks between concurrent
writers: account, then invoice, then the number counter. Slow side effects
(PDF rendering) run from `transaction.on_commit`, never inside the transaction.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Sum
from django.utils import timezone

from accounts.models import Account, Seller
from billing.lib.money import (
    MAX_AMOUNT,
    QUANTITY_DECIMAL_PLACES,
    UNIT_PRICE_DECIMAL_PLACES,
    ZERO,
    line_cost,
    quantize,
    vat_amount,
)
from invoices import tax
from invoices.exceptions import (
    AccountNotBillable,
    ChargeFailed,
    InvalidInvoiceTransition,
    InvoiceLocked,
    InvoiceNotChargeable,
    InvoiceValidationError,
)
from invoices.gateways import PaymentGateway, get_gateway
from invoices.models import Invoice, InvoiceCounter, InvoiceEvent, LineItem, PaymentTransaction

State = Invoice.State
FRIENDLY_ID_RE = re.compile(r"^\d{4}(-\d{2})?-\d{8}$")
MAX_QUANTITY = Decimal("1000000000")


# --- helpers ------------------------------------------------------------------


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + (day.month - 1) + months
    return dt.date(index // 12, index % 12 + 1, 1)


def _lock_invoice(invoice: Invoice) -> Invoice:
    """Re-read the invoice under a row lock (a no-op lock on SQLite, where
    IMMEDIATE transactions already serialise writers)."""
    return Invoice.objects.select_for_update().select_related("account").get(pk=invoice.pk)


def _record_event(
    invoice: Invoice,
    kind: str,
    *,
    actor: str,
    from_state: str = "",
    to_state: str = "",
    reason: str = "",
    data: dict | None = None,
    now: dt.datetime | None = None,
) -> InvoiceEvent:
    now = now or timezone.now()
    return InvoiceEvent.objects.create(
        invoice=invoice,
        kind=kind,
        actor=actor,
        from_state=from_state,
        to_state=to_state,
        reason=reason,
        data=data or {},
        created_at=now,
        updated_at=now,
    )


def _refresh_totals(invoice: Invoice) -> None:
    """Recompute the stored totals from the lines; only while the invoice is editable."""
    total = invoice.line_items.aggregate(total=Sum("cost"))["total"] or ZERO
    invoice.cost_without_vat = quantize(total, invoice.currency)
    invoice.vat_amount = vat_amount(invoice.cost_without_vat, invoice.vat_rate, invoice.currency)
    invoice.cost = invoice.cost_without_vat + invoice.vat_amount


def invoice_totals(
    lines_total: Decimal, *, vat_rate: Decimal | None, currency: str
) -> tuple[Decimal, Decimal, Decimal]:
    """(cost_without_vat, vat_amount, cost) of an invoice whose line costs add up to
    `lines_total`: the rule of `_refresh_totals`, for callers that total many
    invoices in one query (the billing run)."""
    cost_without_vat = quantize(lines_total, currency)
    vat = vat_amount(cost_without_vat, vat_rate, currency)
    return cost_without_vat, vat, cost_without_vat + vat


def _apply_live_terms(invoice: Invoice, account: Account) -> None:
    """Until issue, VAT and currency follow the buyer account."""
    invoice.vat_rate = account.vat_rate
    invoice.vat_code = account.vat_code
    invoice.currency = account.currency


def buyer_details(account: Account) -> dict:
    return {
        "id": account.pk,
        "org_name": account.org_name,
        "email": account.billing_email,
        "address_line1": account.address_line1,
        "address_line2": account.address_line2,
        "city": account.city,
        "state": account.address_state,
        "zip": account.zip,
        "country": account.country,
        "phone": account.phone,
        "vat_code": account.vat_code,
    }


def seller_details(seller: Seller) -> dict:
    return {
        "id": seller.pk,
        "name": seller.name,
        "address_line1": seller.address_line1,
        "address_line2": seller.address_line2,
        "city": seller.city,
        "state": seller.address_state,
        "zip": seller.zip,
        "country": seller.country,
        "phone": seller.phone,
        "email": seller.email,
        "vat_id": seller.vat_id,
        "bank_name": seller.bank_name,
        "bank_account_holder": seller.bank_account_holder,
        "iban": seller.iban,
        "bic": seller.bic,
    }


def invoice_series(period: dt.date) -> str:
    if settings.INVOICE_NUMBERING == "yearly":
        return f"{period.year:04d}"
    return f"{period.year:04d}-{period.month:02d}"


def _next_number(series: str, now: dt.datetime) -> int:
    """Take the next number of a series in one statement.

    The upsert both creates the counter row on first use and increments it,
    holding the row lock until the caller's transaction ends, so concurrent
    issuers queue here and a rolled-back issue gives its number back.
    """
    table = InvoiceCounter._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (series, last_number, created_at, updated_at) "
            "VALUES (%s, 1, %s, %s) "
            f"ON CONFLICT (series) DO UPDATE SET last_number = {table}.last_number + 1, "
            "updated_at = excluded.updated_at RETURNING last_number",
            [series, now, now],
        )
        return int(cursor.fetchone()[0])


def _raise_counter_to(series: str, number: int, now: dt.datetime) -> None:
    """After a hand-set number, make later automatic numbers continue after it."""
    table = InvoiceCounter._meta.db_table
    greatest = "GREATEST" if connection.vendor == "postgresql" else "MAX"
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (series, last_number, created_at, updated_at) "
            "VALUES (%s, %s, %s, %s) "
            f"ON CONFLICT (series) DO UPDATE SET last_number = "
            f"{greatest}({table}.last_number, excluded.last_number), updated_at = excluded.updated_at",
            [series, number, now, now],
        )


def _assign_number(invoice: Invoice, now: dt.datetime) -> None:
    if invoice.friendly_id:
        return  # a number set by hand is kept
    series = invoice_series(invoice.period)
    invoice.friendly_id = f"{series}-{_next_number(series, now):08d}"


def validate_period(period: dt.date, now: dt.datetime | None = None) -> dt.date:
    now = now or timezone.now()
    if period.day != 1:
        period = period.replace(day=1)
    latest = _add_months(now.date().replace(day=1), 12)
    if period < dt.date(2000, 1, 1) or period > latest:
        raise InvoiceValidationError(
            "must be between 2000-01 and 12 months from now", field="period"
        )
    return period


def _validate_line_amounts(quantity: Decimal, unit_price: Decimal) -> None:
    if quantity <= 0:
        raise InvoiceValidationError("must be greater than 0", field="quantity")
    if quantity > MAX_QUANTITY:
        raise InvoiceValidationError(f"must be at most {MAX_QUANTITY}", field="quantity")
    if quantity != quantity.quantize(Decimal(1).scaleb(-QUANTITY_DECIMAL_PLACES)):
        raise InvoiceValidationError(
            f"must have at most {QUANTITY_DECIMAL_PLACES} decimal places", field="quantity"
        )
    if unit_price < 0:
        raise InvoiceValidationError("must not be negative", field="unit_price")
    if unit_price > MAX_AMOUNT:
        raise InvoiceValidationError(f"must be at most {MAX_AMOUNT}", field="unit_price")
    if quantity * unit_price > MAX_AMOUNT:
        raise InvoiceValidationError(f"line cost must be at most {MAX_AMOUNT}", field="cost")


def line_item_validate(*, name: str, quantity: Decimal, unit_price: Decimal) -> None:
    """The checks `line_item_add` makes, for forms that report errors before saving."""
    if not name or not name.strip():
        raise InvoiceValidationError("can't be blank", field="name")
    _validate_line_amounts(quantity, unit_price)


# --- creation and editing ------------------------------------------------------


@transaction.atomic
def invoice_create(
    *,
    account: Account,
    period: dt.date | None = None,
    creation_type: str = Invoice.CreationType.MANUAL,
    actor: str,
    now: dt.datetime | None = None,
) -> Invoice:
    """A new open invoice for one account and month (default: the current month)."""
    now = now or timezone.now()
    account = Account.objects.select_for_update().get(pk=account.pk)
    if account.is_deleted:
        raise AccountNotBillable("The account has been deleted.", field="account_id")
    period = validate_period(period or month_start(now.date()), now)
    invoice = Invoice(
        account=account,
        period=period,
        creation_type=creation_type,
        created_at=now,
    )
    _apply_live_terms(invoice, account)
    invoice.save()
    _record_event(invoice, InvoiceEvent.Kind.CREATED, actor=actor, to_state=State.OPEN, now=now)
    return invoice


@transaction.atomic
def line_item_add(
    *,
    invoice: Invoice,
    name: str,
    quantity: Decimal = Decimal("1"),
    unit_price: Decimal | None = None,
    cost: Decimal | None = None,
    description: str = "",
    type: str = LineItem.Type.MANUAL,
    source: str = "",
    metric_id: int | None = None,
    plan_id: int | None = None,
    contract_id: int | None = None,
    contract_type: str = "",
    actor: str,
    now: dt.datetime | None = None,
) -> LineItem:
    """Add a line to an open or finalized invoice and recompute its totals.

    Give `unit_price`, or `cost` (the line total, as 3scale clients send it),
    from which the unit price is derived.
    """
    now = now or timezone.now()
    invoice = _lock_invoice(invoice)
    if not invoice.is_editable:
        raise InvoiceLocked("Invalid invoice state")
    if not name or not name.strip():
        raise InvoiceValidationError("can't be blank", field="name")
    if unit_price is None:
        if cost is None:
            raise InvoiceValidationError("give a unit price or a cost", field="cost")
        if cost < 0:
            raise InvoiceValidationError("must not be negative", field="cost")
        # Checked before dividing: a huge cost would overflow the quantize below.
        if cost > MAX_AMOUNT:
            raise InvoiceValidationError(f"must be at most {MAX_AMOUNT}", field="cost")
        if quantity <= 0:
            raise InvoiceValidationError("must be greater than 0", field="quantity")
        _validate_line_amounts(quantity, ZERO)  # the quantity's own limits, before dividing
        unit_price = (cost / quantity).quantize(Decimal(1).scaleb(-UNIT_PRICE_DECIMAL_PLACES))
    _validate_line_amounts(quantity, unit_price)
    line = LineItem.objects.create(
        invoice=invoice,
        name=name.strip()[:255],
        description=description,
        quantity=quantity,
        unit_price=unit_price,
        cost=line_cost(quantity, unit_price, invoice.currency),
        type=type,
        source=source,
        metric_id=metric_id,
        plan_id=plan_id,
        contract_id=contract_id,
        contract_type=contract_type,
        created_at=now,
    )
    _apply_live_terms(invoice, invoice.account)
    _refresh_totals(invoice)
    invoice.save()
    _record_event(
        invoice,
        InvoiceEvent.Kind.LINE_ADDED,
        actor=actor,
        data={"line_item_id": line.pk, "name": line.name, "cost": str(line.cost)},
        now=now,
    )
    return line


@transaction.atomic
def line_item_remove(*, line_item: LineItem, actor: str, now: dt.datetime | None = None) -> None:
    """Remove a line from an open or finalized invoice and recompute its totals."""
    invoice = _lock_invoice(line_item.invoice)
    if not invoice.is_editable:
        raise InvoiceLocked("Invalid invoice state")
    data = {"line_item_id": line_item.pk, "name": line_item.name, "cost": str(line_item.cost)}
    LineItem.objects.filter(pk=line_item.pk, invoice=invoice).delete()
    _apply_live_terms(invoice, invoice.account)
    _refresh_totals(invoice)
    invoice.save()
    _record_event(invoice, InvoiceEvent.Kind.LINE_REMOVED, actor=actor, data=data, now=now)


@transaction.atomic
def invoice_recompute(*, invoice: Invoice, actor: str) -> Invoice:
    """Re-read VAT and currency from the account and recompute totals (editable only)."""
    invoice = _lock_invoice(invoice)
    if not invoice.is_editable:
        raise InvoiceLocked("Invalid invoice state")
    _apply_live_terms(invoice, invoice.account)
    _refresh_totals(invoice)
    invoice.save()
    return invoice


@transaction.atomic
def invoice_update(
    *,
    invoice: Invoice,
    period: dt.date | None = None,
    friendly_id: str | None = None,
    actor: str,
    now: dt.datetime | None = None,
) -> Invoice:
    """Change the period and/or number of an invoice that has not been issued."""
    now = now or timezone.now()
    invoice = _lock_invoice(invoice)
    if not invoice.is_editable:
        raise InvoiceLocked("Invalid invoice state")
    changes: dict[str, list[str | None]] = {}
    if period is not None:
        period = validate_period(period, now)
        if period != invoice.period:
            changes["period"] = [invoice.period.isoformat(), period.isoformat()]
            invoice.period = period
    if friendly_id is not None:
        if not FRIENDLY_ID_RE.match(friendly_id):
            raise InvoiceValidationError(
                "format should be YYYY-MM-XXXXXXXX or YYYY-XXXXXXXX", field="friendly_id"
            )
        if friendly_id != invoice.friendly_id:
            if Invoice.objects.filter(friendly_id=friendly_id).exclude(pk=invoice.pk).exists():
                raise InvoiceValidationError("has already been taken", field="friendly_id")
            changes["friendly_id"] = [invoice.friendly_id, friendly_id]
            invoice.friendly_id = friendly_id
            series, number = friendly_id.rsplit("-", 1)
            _raise_counter_to(series, int(number), now)
    if changes:
        try:
            with transaction.atomic():
                invoice.save()
        except IntegrityError:
            raise InvoiceValidationError("has already been taken", field="friendly_id") from None
        _record_event(invoice, InvoiceEvent.Kind.UPDATED, actor=actor, data=changes, now=now)
    return invoice


@transaction.atomic
def invoice_delete(*, invoice: Invoice, actor: str) -> None:
    """Delete a draft. Anything past `open` is kept for the books: cancel it instead."""
    invoice = _lock_invoice(invoice)
    if invoice.state != State.OPEN:
        raise InvoiceLocked(
            f"Invoice {invoice.pk} is {invoice.state}; only open invoices can be deleted. "
            "Cancel it instead."
        )
    invoice.delete()


# --- the state machine -----------------------------------------------------------


def _enter_finalized(invoice: Invoice, now: dt.datetime) -> None:
    invoice.finalized_at = now
    _assign_number(invoice, now)


def _enter_pending(invoice: Invoice, now: dt.datetime, *, due_on: dt.date | None = None) -> None:
    """Issue: freeze the terms and parties, number it, date it.

    `due_on` replaces the due date the account's payment terms would give
    (the /v1 API takes it from the client); it may not precede the issue date.
    """
    account = invoice.account
    if account.is_deleted:
        raise AccountNotBillable("Cannot issue an invoice of a deleted account.")
    _apply_live_terms(invoice, account)
    tax.apply_treatment(invoice, account, Seller.load())
    _refresh_totals(invoice)
    invoice.buyer_details = buyer_details(account)
    invoice.seller_details = seller_details(Seller.load())
    _assign_number(invoice, now)
    invoice.issued_on = now.date()
    terms = account.payment_terms_days
    if terms is None:
        terms = settings.DEFAULT_PAYMENT_TERMS_DAYS
    invoice.due_on = invoice.issued_on + dt.timedelta(days=terms)
    if due_on is not None:
        if due_on < invoice.issued_on:
            raise InvoiceValidationError("must not be before the issue date", field="due_on")
        invoice.due_on = due_on
    if invoice.finalized_at is None:
        invoice.finalized_at = now
    invoice_id = invoice.pk
    transaction.on_commit(lambda: _schedule_pdf(invoice_id))


def _schedule_pdf(invoice_id: int) -> None:
    from invoices.tasks import invoice_render_pdf

    invoice_render_pdf.delay(invoice_id)


def _enter_paid(invoice: Invoice, now: dt.datetime) -> None:
    invoice.paid_at = now


def _enter_cancelled(invoice: Invoice, now: dt.datetime) -> None:
    invoice.cancelled_at = now


_ON_ENTER = {
    State.FINALIZED: _enter_finalized,
    State.PENDING: _enter_pending,
    State.PAID: _enter_paid,
    State.CANCELLED: _enter_cancelled,
}


def _transition_locked(
    invoice: Invoice,
    to_state: str,
    *,
    actor: str,
    reason: str,
    now: dt.datetime,
    data=None,
    enter_options: dict | None = None,
) -> Invoice:
    if not invoice.can_transition_to(to_state):
        raise InvalidInvoiceTransition(f"Cannot transition to {to_state}")
    from_state = invoice.state
    enter = _ON_ENTER.get(to_state)
    if enter is not None:
        enter(invoice, now, **(enter_options or {}))
    invoice.state = to_state
    invoice.save()
    _record_event(
        invoice,
        InvoiceEvent.Kind.TRANSITION,
        actor=actor,
        from_state=from_state,
        to_state=to_state,
        reason=reason,
        data=data,
        now=now,
    )
    return invoice


@transaction.atomic
def invoice_transition(
    *, invoice: Invoice, to_state: str, actor: str, reason: str = "", now: dt.datetime | None = None
) -> Invoice:
    """Move an invoice to `to_state` if the map allows it; raises InvalidInvoiceTransition."""
    now = now or timezone.now()
    locked = _lock_invoice(invoice)
    return _transition_locked(locked, to_state, actor=actor, reason=reason, now=now)


def invoice_finalize(*, invoice: Invoice, actor: str, now: dt.datetime | None = None) -> Invoice:
    return invoice_transition(invoice=invoice, to_state=State.FINALIZED, actor=actor, now=now)


def invoice_issue(
    *,
    invoice: Invoice,
    actor: str,
    now: dt.datetime | None = None,
    due_on: dt.date | None = None,
) -> Invoice:
    """Issue an invoice; `due_on` overrides the due date from the payment terms."""
    if due_on is None:
        return invoice_transition(invoice=invoice, to_state=State.PENDING, actor=actor, now=now)
    now = now or timezone.now()
    with transaction.atomic():
        locked = _lock_invoice(invoice)
        return _transition_locked(
            locked,
            State.PENDING,
            actor=actor,
            reason="",
            now=now,
            data={"due_on": due_on.isoformat()},
            enter_options={"due_on": due_on},
        )


def invoice_cancel(
    *, invoice: Invoice, actor: str, reason: str = "", now: dt.datetime | None = None
) -> Invoice:
    return invoice_transition(
        invoice=invoice, to_state=State.CANCELLED, actor=actor, reason=reason, now=now
    )


@transaction.atomic
def invoice_mark_paid(
    *,
    invoice: Invoice,
    actor: str,
    method: str = PaymentTransaction.Method.BANK_TRANSFER,
    reference: str = "",
    now: dt.datetime | None = None,
) -> Invoice:
    """Record a payment received outside the gateway (e.g. a bank transfer) and mark paid."""
    now = now or timezone.now()
    invoice = _lock_invoice(invoice)
    if not invoice.can_transition_to(State.PAID):
        raise InvalidInvoiceTransition(f"Cannot transition to {State.PAID}")
    if invoice.cost > 0:
        PaymentTransaction.objects.create(
            invoice=invoice,
            account=invoice.account,
            amount=invoice.cost,
            currency=invoice.currency,
            action=PaymentTransaction.Action.PURCHASE,
            success=True,
            reference=reference,
            message="Payment recorded manually",
            method=method,
            created_at=now,
        )
    return _transition_locked(
        invoice, State.PAID, actor=actor, reason=f"payment recorded ({method})", now=now
    )


def invoice_charge(
    *,
    invoice: Invoice,
    actor: str,
    automatic: bool = False,
    gateway: PaymentGateway | None = None,
    now: dt.datetime | None = None,
) -> Invoice:
    """Charge the buyer's card for the invoice through the payment gateway.

    The invoice row stays locked while the gateway is called, so parallel
    charges of one invoice queue and only the first can succeed; a unique
    constraint on successful purchases backs this up. A decline is recorded
    (transaction row, event, state) and committed before ChargeFailed is raised.
    Automatic charges count attempts: the first two failures leave the invoice
    `unpaid`, the third makes it `failed`. Manual charges do not count.
    """
    now = now or timezone.now()
    gateway = gateway or get_gateway()
    with transaction.atomic():
        locked = _lock_invoice(invoice)
        if locked.state not in Invoice.CHARGEABLE_STATES:
            raise InvoiceNotChargeable(f"Invoice {locked.pk} is not in chargeable state!")
        if locked.cost <= 0:
            return _transition_locked(
                locked, State.PAID, actor=actor, reason="nothing to charge", now=now
            )
        account = locked.account
        result = gateway.purchase(
            account=account,
            amount=locked.cost,
            currency=locked.currency,
            description=f"Invoice {locked.friendly_id}",
        )
        PaymentTransaction.objects.create(
            invoice=locked,
            account=account,
            amount=locked.cost,
            currency=locked.currency,
            action=PaymentTransaction.Action.PURCHASE,
            success=result.success,
            reference=result.reference,
            message=result.message[:1024],
            method=PaymentTransaction.Method.CREDIT_CARD,
            card_brand=result.card_brand,
            card_last4=result.card_last4,
            card_exp_month=result.card_exp_month,
            card_exp_year=result.card_exp_year,
            test=result.test,
            gateway_response=result.response,
            created_at=now,
        )
        if automatic:
            locked.charge_attempts += 1
            locked.last_charge_attempt_at = now
        if result.success:
            return _transition_locked(
                locked,
                State.PAID,
                actor=actor,
                reason="charged",
                now=now,
                data={"reference": result.reference},
            )
        data = {"reference": result.reference, "message": result.message}
        if automatic and locked.charge_attempts >= settings.MAX_CHARGE_ATTEMPTS:
            if locked.state == State.PENDING:
                _transition_locked(
                    locked, State.UNPAID, actor=actor, reason="charge failed", now=now
                )
            if locked.state == State.UNPAID:
                _transition_locked(
                    locked,
                    State.FAILED,
                    actor=actor,
                    reason="third charge failed",
                    now=now,
                    data=data,
                )
        elif locked.state == State.PENDING:
            _transition_locked(
                locked, State.UNPAID, actor=actor, reason="charge failed", now=now, data=data
            )
        else:
            locked.save()
            _record_event(locked, InvoiceEvent.Kind.CHARGE_FAILED, actor=actor, data=data, now=now)
    raise ChargeFailed("Failed to charge the credit card.")
