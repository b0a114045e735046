"""Every change to an invoice goes through one of these functions.

APIs, admin actions, commands and tasks all call them, so there is exactly one
`invoice_issue`, whoever asks for it.

Locks are taken in one fixed order to rule out deadlocks between concurrent
writers: account, then invoice, then the number counter. Every read-modify-write
of an invoice happens under its row lock: the row, its lines and its totals are
read after `_lock_invoice`, never before. Slow side effects (PDF rendering) run
from `transaction.on_commit`, never inside the transaction: the services send
`invoice_issued` and invoices.tasks schedules the rendering after commit.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Sum
from django.utils import timezone

from accounts.models import Account, AccountCreditEntry, Seller
from accounts.services import account_credit_add, account_credit_consume
from billing.lib.bulk import insert_rows, update_rows
from billing.lib.money import (
    MAX_AMOUNT,
    QUANTITY_DECIMAL_PLACES,
    UNIT_PRICE_DECIMAL_PLACES,
    ZERO,
    line_cost,
    minor_units,
    quantize,
    vat_amount,
)
from billing.lib.months import FIRST_BILLABLE_MONTH, add_months, format_month, month_start
from invoices import representations, tax
from invoices.delivery import outbox
from invoices.exceptions import (
    AccountNotBillable,
    ChargeFailed,
    InvalidInvoiceTransition,
    InvoiceLocked,
    InvoiceNotChargeable,
    InvoiceValidationError,
    RefundFailed,
)
from invoices.gateways import PaymentGateway, get_gateway
from invoices.models import (
    CreditNote,
    CreditNoteLine,
    Invoice,
    InvoiceCounter,
    InvoiceEvent,
    LineItem,
    PaymentTransaction,
    buyer_details,
    seller_details,
)
from invoices.signals import credit_note_issued, invoice_issued

State = Invoice.State
# ASCII digits only: `\d` would accept "２０２６" and other scripts' digits.
FRIENDLY_ID_RE = re.compile(r"\A([0-9]{4}(?:-[0-9]{2})?)-([0-9]{8})\Z")
FRIENDLY_ID_FORMAT_MESSAGE = "format should be YYYY-MM-XXXXXXXX or YYYY-XXXXXXXX"
MAX_QUANTITY = Decimal("1000000000")
MAX_LINE_NAME = 255
_UNIT_PRICE_STEP = Decimal(1).scaleb(-UNIT_PRICE_DECIMAL_PLACES)
# Lines of one invoice (/v1 takes at most this many in one request, too).
MAX_LINE_ITEMS = 500
# A due date is at most this many days after the issue date.
MAX_DUE_DAYS = 366
# An issue date may be one day ahead of UTC's today: east of UTC it already is tomorrow.
MAX_ISSUE_DAYS_AHEAD = 1

__all__ = ["buyer_details", "seller_details"]  # re-exported: they were defined here


# --- helpers ------------------------------------------------------------------


def _lock_invoice(invoice: Invoice) -> Invoice:
    """Re-read the invoice under a row lock (a no-op lock on SQLite, where
    IMMEDIATE transactions already serialise writers).

    The buyer account is locked first, always (the documented order: account, then
    invoice): many invoice writes go on to touch the account (its credit balance, a
    currency that prices the lines), and a writer that took the invoice first and
    the account second would deadlock against one that did the opposite.
    """
    list(Account.objects.select_for_update().filter(pk=invoice.account_id).values_list("pk"))
    # `of=("self",)`: the joined account is read, not locked. Locking it here, in
    # one statement with the invoice, would take the two rows in no set order and
    # deadlock against a writer that holds the account and waits for the invoice.
    return (
        Invoice.objects.select_for_update(of=("self",)).select_related("account").get(pk=invoice.pk)
    )


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
    """Append one event. Its time is when the change happened (`now`), never a
    date the client chose: a back-dated issue date is data on the invoice.

    Every change to an invoice records its event, so its stored representations
    are renewed here (invoices.representations)."""
    representations.invoices_changed([invoice.pk])
    event = _event(
        invoice.pk,
        kind,
        actor=actor,
        from_state=from_state,
        to_state=to_state,
        reason=reason,
        data=data,
        now=now or timezone.now(),
    )
    event.save()
    return event


def _refresh_totals(invoice: Invoice) -> None:
    """Recompute the stored totals from the lines; only while the invoice is editable.

    The lines' sum is bounded by MAX_AMOUNT, like one line: 101 lines at the
    per-line maximum would otherwise overflow the invoice's numeric(18,4)
    columns. Callers are atomic, so the refusal leaves nothing written.
    """
    groups = [
        (category, rate, _decimal(total))
        for category, rate, total in invoice.line_items.values_list("vat_category", "vat_rate")
        .annotate(total=Sum("cost"))
        .order_by()
    ]
    total = sum((cost for *_, cost in groups), ZERO)
    if total > MAX_AMOUNT:
        raise InvoiceValidationError(
            f"the invoice's lines must add up to at most {MAX_AMOUNT}", field="cost"
        )
    invoice.cost_without_vat, invoice.vat_amount, invoice.cost = _totals_of_groups(invoice, groups)


def _decimal(value: Any) -> Decimal:
    """A sum as the database hands it back (SQLite may give a float or an int)."""
    if value is None:
        return ZERO
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _totals_of_groups(
    invoice: Invoice, groups: Sequence[tuple[str | None, Decimal | None, Decimal]]
) -> tuple[Decimal, Decimal, Decimal]:
    """(cost_without_vat, vat_amount, cost) of an invoice whose lines add up to these
    (category, rate, cost) sums; a line without a category takes the invoice's. The
    VAT of each category and rate is rounded once (`tax.vat_breakdown`)."""
    rows = tax.vat_breakdown(
        ((*invoice.line_tax(category, rate), cost) for category, rate, cost in groups),
        invoice.currency,
    )
    net = quantize(sum((cost for *_, cost in groups), ZERO), invoice.currency)
    vat = sum((row.vat for row in rows), quantize(ZERO, invoice.currency))
    return net, vat, net + vat


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
    """Until issue, VAT and currency follow the buyer account.

    The currency follows only while the invoice has no lines: line costs are
    rounded in the invoice's currency, and lines priced in USD read as yen
    would no longer agree with the totals. The account refuses a currency
    change while it has such an invoice (accounts.services.account_update);
    this is the invoice's own guard.
    """
    if (
        invoice.currency != account.currency
        and invoice.pk is not None
        and invoice.line_items.exists()
    ):
        raise InvoiceValidationError(
            f"the customer's currency is now {account.currency} but this invoice has lines "
            f"in {invoice.currency}; cancel it and bill the lines again",
            field="currency",
        )
    invoice.vat_rate = account.vat_rate
    invoice.vat_code = account.vat_code
    invoice.currency = account.currency


def invoice_series(period: dt.date) -> str:
    if settings.INVOICE_NUMBERING == "yearly":
        return f"{period.year:04d}"
    return format_month(period)


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


def _assign_number(invoice: Invoice, now: dt.datetime) -> None:
    if invoice.friendly_id:
        return  # a number set by hand is kept
    series = invoice_series(invoice.period)
    invoice.friendly_id = f"{series}-{_next_number(series, now):08d}"


def _validate_hand_set_number(invoice: Invoice, friendly_id: str) -> None:
    """A number set by hand never moves or splits the automatic series.

    It must be in the invoice's own series, one the series has already reached
    (at most the counter's last number: a gap left by numbers given out before,
    never a number ahead of the counter) and not taken. An invoice's number,
    once it has one, is final: renumbering would leave a hole. Nothing is
    written here, so a refused number creates no counter row.
    """
    match = FRIENDLY_ID_RE.match(friendly_id)
    if match is None:
        raise InvoiceValidationError(FRIENDLY_ID_FORMAT_MESSAGE, field="friendly_id")
    if invoice.friendly_id:
        raise InvoiceValidationError(
            f"cannot be changed: the invoice is numbered {invoice.friendly_id}",
            field="friendly_id",
        )
    series, number = match.group(1), int(match.group(2))
    expected = invoice_series(invoice.period)
    if series != expected:
        raise InvoiceValidationError(
            f"must be in the invoice's series {expected} (its period)", field="friendly_id"
        )
    reached = (
        InvoiceCounter.objects.filter(series=series).values_list("last_number", flat=True).first()
        or 0
    )
    if not 1 <= number <= reached:
        raise InvoiceValidationError(
            f"the series {series} has not reached {number} (its last number is {reached}); "
            "leave the number empty and it is assigned when the invoice is finalized or issued",
            field="friendly_id",
        )
    if Invoice.objects.filter(friendly_id=friendly_id).exclude(pk=invoice.pk).exists():
        raise InvoiceValidationError("has already been taken", field="friendly_id")


def validate_period(period: dt.date, now: dt.datetime | None = None) -> dt.date:
    now = now or timezone.now()
    period = month_start(period)
    latest = add_months(now.date(), 12)
    if period < FIRST_BILLABLE_MONTH or period > latest:
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


def _validate_line_name(name: str) -> None:
    if not name or not name.strip():
        raise InvoiceValidationError("can't be blank", field="name")
    if len(name.strip()) > MAX_LINE_NAME:
        raise InvoiceValidationError(
            f"is too long (maximum is {MAX_LINE_NAME} characters)", field="name"
        )


def line_item_validate(*, name: str, quantity: Decimal, unit_price: Decimal) -> None:
    """The checks `line_item_add` makes, for forms that report errors before saving."""
    _validate_line_name(name)
    _validate_line_amounts(quantity, unit_price)


def invoice_due_on(
    *, issued_on: dt.date, account: Account, due_on: dt.date | None = None
) -> dt.date:
    """The due date rule, the one place it is written: the given date, on or
    after the issue date and at most MAX_DUE_DAYS later; else the account's
    payment terms (or the default terms) after the issue date."""
    if due_on is None:
        terms = account.payment_terms_days
        if terms is None:
            terms = settings.DEFAULT_PAYMENT_TERMS_DAYS
        return issued_on + dt.timedelta(days=terms)
    if due_on < issued_on:
        raise InvoiceValidationError("must not be before the issue date", field="due_on")
    if (due_on - issued_on).days > MAX_DUE_DAYS:
        raise InvoiceValidationError(
            f"must be at most {MAX_DUE_DAYS} days after the issue date", field="due_on"
        )
    return due_on


def validate_issue_date(invoice: Invoice, issued_on: dt.date, now: dt.datetime) -> dt.date:
    """How far an issue date given by the client may go.

    Never in the future (one day of slack for clients east of UTC), and never
    before the earlier of the billed month's first day and the day the invoice
    was created: an invoice for a past month may carry a date in that month, a
    fresh invoice cannot claim to have been issued years ago. The date is data
    on the invoice; the events still record the moment of issuing.
    """
    if (issued_on - now.date()).days > MAX_ISSUE_DAYS_AHEAD:
        raise InvoiceValidationError("must not be in the future", field="issued_on")
    earliest = min(invoice.period, invoice.created_at.astimezone(dt.UTC).date())
    if issued_on < earliest:
        raise InvoiceValidationError(
            f"must not be before {earliest.isoformat()} (the billed month's first day, "
            "or the day the invoice was created if that is earlier)",
            field="issued_on",
        )
    return issued_on


def _validate_cost(cost: Decimal, currency: str) -> None:
    """A line total sent by the client is stored as sent: it must fit the currency."""
    if cost < 0:
        raise InvoiceValidationError("must not be negative", field="cost")
    if cost > MAX_AMOUNT:
        raise InvoiceValidationError(f"must be at most {MAX_AMOUNT}", field="cost")
    if cost != quantize(cost, currency):
        raise InvoiceValidationError(
            f"must have at most {minor_units(currency)} decimal places in {currency}",
            field="cost",
        )


@dataclass(frozen=True)
class NewLine:
    """A line to add: `quantity` x `unit_price`, named `name`."""

    name: str
    unit_price: Decimal
    quantity: Decimal = Decimal("1")
    description: str = ""
    # The line's own VAT category and rate (None: the invoice's treatment).
    vat_category: str | None = None
    vat_rate: Decimal | None = None


# --- creation and editing ------------------------------------------------------


def _create_locked(
    account: Account, period: dt.date | None, creation_type: str, actor: str, now: dt.datetime
) -> Invoice:
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
    outbox.invoice_event_record(invoice, "invoice.created", now=now)
    return invoice


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
    return _create_locked(account, period, creation_type, actor, now)


def _check_lines_total(lines: Sequence[NewLine], currency: str) -> None:
    """Refuse, before writing, lines whose sum no invoice could hold."""
    if len(lines) > MAX_LINE_ITEMS:
        raise InvoiceValidationError(f"at most {MAX_LINE_ITEMS} lines", field="line_items")
    total = sum((line_cost(line.quantity, line.unit_price, currency) for line in lines), ZERO)
    if total > MAX_AMOUNT:
        raise InvoiceValidationError(
            f"the lines must add up to at most {MAX_AMOUNT} (they add up to {total})",
            field="line_items",
        )


def _add_lines_locked(
    invoice: Invoice, lines: Sequence[NewLine], *, actor: str, now: dt.datetime
) -> None:
    """Add lines to an invoice the caller holds locked; a bad line names its index."""
    for index, line in enumerate(lines):
        try:
            _line_item_add_locked(
                invoice,
                name=line.name,
                description=line.description,
                quantity=line.quantity,
                unit_price=line.unit_price,
                vat_category=line.vat_category,
                vat_rate=line.vat_rate,
                actor=actor,
                now=now,
            )
        except InvoiceValidationError as exc:
            raise InvoiceValidationError(
                exc.message, field=f"line_items[{index}].{exc.field}"
            ) from None


@transaction.atomic
def invoice_create_with_lines(
    *,
    account: Account,
    period: dt.date | None = None,
    lines: Sequence[NewLine],
    issue: bool = False,
    issued_on: dt.date | None = None,
    due_on: dt.date | None = None,
    actor: str,
    now: dt.datetime | None = None,
) -> Invoice:
    """Create an invoice with its lines and, with `issue`, issue it: all or nothing.

    `period` defaults to the month of `issued_on` (or of today).
    """
    now = now or timezone.now()
    _check_lines_total(lines, account.currency)
    if period is None and issued_on is not None:
        period = month_start(issued_on)
    invoice = _create_locked(account, period, Invoice.CreationType.MANUAL, actor, now)
    invoice = _lock_invoice(invoice)
    _add_lines_locked(invoice, lines, actor=actor, now=now)
    if issue:
        # The one issuing service, inside this transaction: a refusal undoes it all.
        invoice = invoice_issue(
            invoice=invoice, actor=actor, now=now, issued_on=issued_on, due_on=due_on
        )
    return invoice


def _set_period_locked(invoice: Invoice, period: dt.date, now: dt.datetime, changes: dict) -> None:
    period = validate_period(period, now)
    if period == invoice.period:
        return
    if invoice.friendly_id and invoice.friendly_id.rsplit("-", 1)[0] != invoice_series(period):
        # The number says which series (month or year) the invoice belongs to.
        raise InvoiceValidationError(
            f"must stay in the series of the invoice's number {invoice.friendly_id}",
            field="period",
        )
    changes["period"] = [invoice.period.isoformat(), period.isoformat()]
    invoice.period = period


@transaction.atomic
def invoice_replace_lines(
    *,
    invoice: Invoice,
    lines: Sequence[NewLine] | None,
    period: dt.date | None = None,
    actor: str,
    now: dt.datetime | None = None,
) -> Invoice:
    """Replace a draft's lines (and, given `period`, its month) in one step.

    The lines are read after the invoice's row lock, so parallel replacements
    queue and each one removes what the previous one added: the draft ends
    with exactly one request's lines. `lines=None` keeps the lines.
    """
    now = now or timezone.now()
    invoice = _lock_invoice(invoice)
    if not invoice.is_draft:
        raise InvoiceLocked("only open invoices can be changed", field="state")
    changes: dict[str, list[str | None]] = {}
    if period is not None:
        _set_period_locked(invoice, period, now, changes)
        if changes:
            invoice.save()
            _record_event(invoice, InvoiceEvent.Kind.UPDATED, actor=actor, data=changes, now=now)
    if lines is not None:
        _check_lines_total(lines, invoice.currency)
        for line in list(invoice.line_items.all()):
            _line_item_remove_locked(invoice, line, actor=actor, now=now)
        _add_lines_locked(invoice, lines, actor=actor, now=now)
    return invoice


def _line_item_add_locked(
    invoice: Invoice,
    *,
    name: str,
    quantity: Decimal = Decimal("1"),
    unit_price: Decimal | None = None,
    cost: Decimal | None = None,
    vat_category: str | None = None,
    vat_rate: Decimal | None = None,
    actor: str,
    now: dt.datetime,
    **fields: Any,
) -> LineItem:
    """`line_item_add` on an invoice the caller holds locked; `fields` are the
    line's other columns (description, type, source, the 3scale references)."""
    if not invoice.is_editable:
        raise InvoiceLocked("Invalid invoice state")
    _validate_line_name(name)
    _apply_live_terms(invoice, invoice.account)
    vat_category, vat_rate = _line_tax_checked(invoice, vat_category, vat_rate)
    if unit_price is None:
        if cost is None:
            raise InvoiceValidationError("give a unit price or a cost", field="cost")
        # The cost is the line total as the client sent it. It is stored as sent
        # or refused: the unit price derived from it (eight places) must give the
        # cost back, so that every line keeps cost = round(quantity x unit price).
        _validate_cost(cost, invoice.currency)
        if quantity <= 0:
            raise InvoiceValidationError("must be greater than 0", field="quantity")
        _validate_line_amounts(quantity, ZERO)  # the quantity's own limits, before dividing
        unit_price = (cost / quantity).quantize(_UNIT_PRICE_STEP, rounding=ROUND_HALF_UP)
        _validate_line_amounts(quantity, unit_price)
        if line_cost(quantity, unit_price, invoice.currency) != cost:
            raise InvoiceValidationError(
                f"cannot be split into {quantity.normalize():f} units at a unit price with at "
                f"most {UNIT_PRICE_DECIMAL_PLACES} decimal places; send a quantity of 1 or a "
                "cost the quantity divides",
                field="cost",
            )
        stored_cost = cost
    else:
        _validate_line_amounts(quantity, unit_price)
        stored_cost = line_cost(quantity, unit_price, invoice.currency)
    line = LineItem.objects.create(
        invoice=invoice,
        name=name.strip(),
        quantity=quantity,
        unit_price=unit_price,
        cost=stored_cost,
        vat_category=vat_category,
        vat_rate=vat_rate,
        created_at=now,
        **fields,
    )
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
    vat_category: str | None = None,
    vat_rate: Decimal | None = None,
    actor: str,
    now: dt.datetime | None = None,
) -> LineItem:
    """Add a line to an open or finalized invoice and recompute its totals.

    Give `unit_price`, or `cost` (the line total, as 3scale clients send it,
    stored exactly as sent), from which the unit price is derived. The sum of
    the invoice's lines may not exceed MAX_AMOUNT.
    """
    now = now or timezone.now()
    invoice = _lock_invoice(invoice)
    return _line_item_add_locked(
        invoice,
        name=name,
        quantity=quantity,
        unit_price=unit_price,
        cost=cost,
        description=description,
        type=type,
        source=source,
        metric_id=metric_id,
        plan_id=plan_id,
        contract_id=contract_id,
        contract_type=contract_type,
        vat_category=vat_category,
        vat_rate=vat_rate,
        actor=actor,
        now=now,
    )


def _line_tax_checked(
    invoice: Invoice, category: str | None, rate: Decimal | None
) -> tuple[str | None, Decimal | None]:
    """A new line's own VAT category and rate, checked on their own and against the
    treatment issuing would apply now (issuing checks again, `_freeze_line_taxes`)."""
    try:
        category, rate = tax.line_tax_validate(category, rate)
    except tax.LineTaxError as exc:
        raise InvoiceValidationError(exc.message, field=exc.field) from None
    if category is None:
        return None, None
    account, seller = invoice.account, Seller.load()
    treatment = tax.account_treatment(account, seller)
    problem = tax.line_category_problem(
        category,
        seller_vat_id=seller.vat_id,
        seller_country=seller.country_code,
        buyer_vat_id=account.vat_code,
        buyer_country=account.country_code,
    )
    if not problem:
        present = {
            treatment.category if other is None else other
            for other in invoice.line_items.values_list("vat_category", flat=True)
            .order_by()
            .distinct()
        }
        problem = tax.mixing_problem({category, *present})
    if problem:
        raise InvoiceValidationError(problem, field="vat_category")
    return category, rate


def _freeze_line_taxes(invoice: Invoice, seller: Seller) -> None:
    """At issue, after the treatment is frozen: check every line's category against
    the parties and the others, then write the invoice's on the lines without one."""
    account = invoice.account
    categories = {
        invoice.line_tax(category, None)[0]
        for category in invoice.line_items.values_list("vat_category", flat=True)
        .order_by()
        .distinct()
    }
    for category in sorted(categories - {invoice.vat_category}):
        problem = tax.line_category_problem(
            category,
            seller_vat_id=seller.vat_id,
            seller_country=seller.country_code,
            buyer_vat_id=account.vat_code,
            buyer_country=account.country_code,
        )
        if problem:
            raise InvoiceValidationError(problem, field="line_items")
    problem = tax.mixing_problem(categories)
    if problem:
        raise InvoiceValidationError(
            f"{problem}; the customer's treatment is {invoice.vat_category}", field="line_items"
        )
    invoice.line_items.filter(vat_category__isnull=True).update(
        vat_category=invoice.vat_category, vat_rate=invoice.vat_rate or ZERO
    )


def _line_item_remove_locked(
    invoice: Invoice, line_item: LineItem, *, actor: str, now: dt.datetime | None
) -> None:
    if not invoice.is_editable:
        raise InvoiceLocked("Invalid invoice state")
    data = {"line_item_id": line_item.pk, "name": line_item.name, "cost": str(line_item.cost)}
    LineItem.objects.filter(pk=line_item.pk, invoice=invoice).delete()
    _apply_live_terms(invoice, invoice.account)
    _refresh_totals(invoice)
    invoice.save()
    _record_event(invoice, InvoiceEvent.Kind.LINE_REMOVED, actor=actor, data=data, now=now)


@transaction.atomic
def line_item_remove(*, line_item: LineItem, actor: str, now: dt.datetime | None = None) -> None:
    """Remove a line from an open or finalized invoice and recompute its totals."""
    invoice = _lock_invoice(line_item.invoice)
    _line_item_remove_locked(invoice, line_item, actor=actor, now=now)


@transaction.atomic
def invoice_recompute(*, invoice: Invoice, actor: str) -> Invoice:
    """Re-read VAT and currency from the account and recompute totals (editable only)."""
    invoice = _lock_invoice(invoice)
    if not invoice.is_editable:
        raise InvoiceLocked("Invalid invoice state")
    _apply_live_terms(invoice, invoice.account)
    _refresh_totals(invoice)
    invoice.save()
    representations.invoices_changed([invoice.pk])
    return invoice


def invoice_update_validate(
    *,
    invoice: Invoice,
    period: dt.date | None = None,
    friendly_id: str | None = None,
    now: dt.datetime | None = None,
) -> None:
    """The checks `invoice_update` makes, for forms that report errors before saving."""
    now = now or timezone.now()
    probe = copy.copy(invoice)  # nothing is written, the caller's instance is untouched
    if period is not None:
        _set_period_locked(probe, period, now, {})
    if friendly_id is not None and friendly_id != probe.friendly_id:
        _validate_hand_set_number(probe, friendly_id)


@transaction.atomic
def invoice_update(
    *,
    invoice: Invoice,
    period: dt.date | None = None,
    friendly_id: str | None = None,
    actor: str,
    now: dt.datetime | None = None,
) -> Invoice:
    """Change the period and/or number of an invoice that has not been issued.

    A number set by hand follows `_validate_hand_set_number`; a period must
    stay in the series of the invoice's number.
    """
    now = now or timezone.now()
    invoice = _lock_invoice(invoice)
    if not invoice.is_editable:
        raise InvoiceLocked("Invalid invoice state")
    changes: dict[str, list[str | None]] = {}
    if period is not None:
        _set_period_locked(invoice, period, now, changes)
    if friendly_id is not None and friendly_id != invoice.friendly_id:
        _validate_hand_set_number(invoice, friendly_id)
        changes["friendly_id"] = [invoice.friendly_id, friendly_id]
        invoice.friendly_id = friendly_id
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
    if not invoice.is_draft:
        raise InvoiceLocked(
            f"Invoice {invoice.pk} is {invoice.state}; only open invoices can be deleted. "
            "Cancel it instead."
        )
    invoice.delete()


# --- the state machine -----------------------------------------------------------


def _enter_finalized(invoice: Invoice, now: dt.datetime) -> None:
    invoice.finalized_at = now
    _assign_number(invoice, now)


def _enter_pending(
    invoice: Invoice,
    now: dt.datetime,
    *,
    issued_on: dt.date | None = None,
    due_on: dt.date | None = None,
) -> None:
    """Issue: freeze the terms and parties, number it, date it.

    `issued_on` (default: today) is checked by `validate_issue_date`; `due_on`
    replaces the due date the payment terms would give (`invoice_due_on`).
    """
    account = invoice.account
    if account.is_deleted:
        raise AccountNotBillable("Cannot issue an invoice of a deleted account.")
    _apply_live_terms(invoice, account)
    seller = Seller.load()
    tax.apply_treatment(invoice, account, seller)
    _freeze_line_taxes(invoice, seller)
    _refresh_totals(invoice)
    if issued_on is None:
        issued_on = now.date()
    else:
        validate_issue_date(invoice, issued_on, now)
    invoice.due_on = invoice_due_on(issued_on=issued_on, account=account, due_on=due_on)
    invoice.issued_on = issued_on
    invoice.buyer_details = buyer_details(account)
    invoice.seller_details = seller_details(seller, currency=invoice.currency)
    _assign_number(invoice, now)
    if invoice.finalized_at is None:
        invoice.finalized_at = now
    # The account's credit balance pays what it can (the caller holds the
    # account's row lock: invoice_issue and invoice_transition take it).
    if invoice.cost > 0:
        invoice.credit_applied = account_credit_consume(
            account=account,
            currency=invoice.currency,
            up_to=invoice.cost,
            invoice_id=invoice.pk,
            actor="system:issue",
            now=now,
        )
    invoice_issued.send(sender=Invoice, invoice_id=invoice.pk)


def _enter_paid(invoice: Invoice, now: dt.datetime) -> None:
    # Paid means nothing is due: a move to `paid` with no payment recorded (the
    # 3scale state change, say) declares the rest received.
    due = invoice.amount_due()
    if due > 0:
        invoice.amount_paid += due
    invoice.paid_at = now


def _enter_cancelled(invoice: Invoice, now: dt.datetime) -> None:
    if invoice.amount_paid > 0 or invoice.amount_credited > 0:
        # Money was received or credited against it: the books keep it; a
        # credit note corrects it instead.
        raise InvalidInvoiceTransition(
            "Cannot cancel an invoice with payments or credit notes; credit it instead"
        )
    if invoice.credit_applied > 0:
        # The credit balance it consumed goes back to the account.
        account_credit_add(
            account=invoice.account,
            amount=invoice.credit_applied,
            currency=invoice.currency,
            kind=AccountCreditEntry.Kind.RELEASED,
            invoice_id=invoice.pk,
            actor="system:cancel",
            now=now,
        )
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
    enter = _ON_ENTER.get(Invoice.State(to_state))
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
    # The e-mails and webhooks this change sends, in its transaction (the outbox).
    outbox.invoice_transition_record(invoice, to_state, now=now)
    return invoice


@transaction.atomic
def invoice_transition(
    *, invoice: Invoice, to_state: str, actor: str, reason: str = "", now: dt.datetime | None = None
) -> Invoice:
    """Move an invoice to `to_state` if the map allows it; raises InvalidInvoiceTransition."""
    now = now or timezone.now()
    # Issuing and cancelling may move the account's credit balance: account first.
    locked = _lock_invoice(invoice)
    return _transition_locked(locked, to_state, actor=actor, reason=reason, now=now)


def invoice_finalize(*, invoice: Invoice, actor: str, now: dt.datetime | None = None) -> Invoice:
    return invoice_transition(invoice=invoice, to_state=State.FINALIZED, actor=actor, now=now)


def _issue_locked(
    invoice: Invoice,
    *,
    actor: str,
    now: dt.datetime,
    issued_on: dt.date | None,
    due_on: dt.date | None,
) -> Invoice:
    data = {}
    if issued_on is not None:
        data["issued_on"] = issued_on.isoformat()
    if due_on is not None:
        data["due_on"] = due_on.isoformat()
    return _transition_locked(
        invoice,
        State.PENDING,
        actor=actor,
        reason="",
        now=now,
        data=data or None,
        enter_options={"issued_on": issued_on, "due_on": due_on},
    )


@transaction.atomic
def invoice_issue(
    *,
    invoice: Invoice,
    actor: str,
    now: dt.datetime | None = None,
    issued_on: dt.date | None = None,
    due_on: dt.date | None = None,
) -> Invoice:
    """Issue an invoice.

    `issued_on` (default: today) may be back-dated within `validate_issue_date`;
    `due_on` overrides the due date from the payment terms (`invoice_due_on`).
    The event is stamped `now`, whatever the issue date says.
    """
    now = now or timezone.now()
    locked = _lock_invoice(invoice)
    return _issue_locked(locked, actor=actor, now=now, issued_on=issued_on, due_on=due_on)


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
    amount: Decimal | None = None,
    paid_on: dt.date | None = None,
    now: dt.datetime | None = None,
) -> Invoice:
    """Record a payment received outside the gateway (e.g. a bank transfer) and mark paid.

    Without `amount`, the payment is what is due and the invoice becomes paid;
    with one, it is `invoice_payment_record` (a part leaves the rest due).
    """
    now = now or timezone.now()
    if amount is not None:
        invoice_payment_record(
            invoice=invoice,
            amount=amount,
            paid_on=paid_on or now.date(),
            method=method,
            reference=reference,
            actor=actor,
            now=now,
        )
        return Invoice.objects.select_related("account").get(pk=invoice.pk)
    invoice = _lock_invoice(invoice)
    if not invoice.can_transition_to(State.PAID):
        raise InvalidInvoiceTransition(f"Cannot transition to {State.PAID}")
    due = invoice.amount_due()
    if due > 0:
        invoice.amount_paid += due
        PaymentTransaction.objects.create(
            invoice=invoice,
            account=invoice.account,
            amount=due,
            applied_amount=due,
            paid_on=paid_on or now.date(),
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
        if locked.account.is_deleted:
            # The customer is gone: no card of theirs is charged any more.
            raise AccountNotBillable("Cannot charge an invoice of a deleted account.")
        due = locked.amount_due()
        if due <= 0:
            return _transition_locked(
                locked, State.PAID, actor=actor, reason="nothing to charge", now=now
            )
        account = locked.account
        result = gateway.purchase(
            account=account,
            amount=due,
            currency=locked.currency,
            description=f"Invoice {locked.friendly_id}",
        )
        PaymentTransaction.objects.create(
            invoice=locked,
            account=account,
            amount=due,
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
            locked.amount_paid += due
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
        representations.invoices_changed([locked.pk])  # the declined attempt is shown
        outbox.invoice_event_record(locked, "invoice.payment_failed", now=now)
    raise ChargeFailed("Failed to charge the credit card.")


# --- payments and credit notes ----------------------------------------------------

# Methods of a payment recorded by hand (a card is charged through the gateway).
RECORDED_PAYMENT_METHODS = (
    PaymentTransaction.Method.BANK_TRANSFER,
    PaymentTransaction.Method.CHEQUE,
    PaymentTransaction.Method.OTHER,
)
CREDIT_NOTE_PREFIX = "CN"
EARLIEST_PAYMENT_DATE = dt.date(2000, 1, 1)


def _validate_money(amount: Decimal, currency: str, *, field: str) -> None:
    """A positive amount the currency can hold (its minor unit) and an invoice could."""
    if amount <= 0:
        raise InvoiceValidationError("must be greater than 0", field=field)
    if amount > MAX_AMOUNT:
        raise InvoiceValidationError(f"must be at most {MAX_AMOUNT}", field=field)
    if amount != quantize(amount, currency):
        raise InvoiceValidationError(
            f"must have at most {minor_units(currency)} decimal places in {currency}",
            field=field,
        )


def _money_data(**amounts: Decimal) -> dict[str, str]:
    return {name: str(value) for name, value in amounts.items()}


@transaction.atomic
def invoice_payment_record(
    *,
    invoice: Invoice,
    amount: Decimal,
    paid_on: dt.date,
    method: str = PaymentTransaction.Method.BANK_TRANSFER,
    reference: str = "",
    actor: str,
    now: dt.datetime | None = None,
) -> PaymentTransaction:
    """Record a payment received outside the gateway: whole, partial or too much.

    What is due goes down by the amount; the invoice becomes `paid` (one
    transition event) when nothing is due any more, else gets one
    `payment_recorded` event. An amount above what is due settles the invoice
    and the excess goes to the account's credit balance (account, then
    invoice: the locks' order).
    """
    now = now or timezone.now()
    if method not in RECORDED_PAYMENT_METHODS:
        raise InvoiceValidationError(
            f"must be one of {', '.join(RECORDED_PAYMENT_METHODS)}", field="method"
        )
    if (paid_on - now.date()).days > MAX_ISSUE_DAYS_AHEAD:
        raise InvoiceValidationError("must not be in the future", field="paid_on")
    if paid_on < EARLIEST_PAYMENT_DATE:
        raise InvoiceValidationError("must not be before 2000-01-01", field="paid_on")
    if len(reference) > 255:
        raise InvoiceValidationError("is too long (maximum is 255 characters)", field="reference")
    locked = _lock_invoice(invoice)
    if locked.state not in Invoice.OUTSTANDING_STATES:
        raise InvalidInvoiceTransition(
            f"Invoice {locked.pk} is {locked.state}: only pending, unpaid or failed invoices "
            "take payments"
        )
    _validate_money(amount, locked.currency, field="amount")
    due = locked.amount_due()
    applied = min(amount, max(due, ZERO))
    excess = amount - applied
    payment = PaymentTransaction.objects.create(
        invoice=locked,
        account=locked.account,
        amount=amount,
        applied_amount=applied,
        currency=locked.currency,
        action=PaymentTransaction.Action.PAYMENT,
        success=True,
        reference=reference,
        message="Payment recorded manually",
        method=method,
        paid_on=paid_on,
        created_at=now,
    )
    locked.amount_paid += applied
    if excess > 0:
        account_credit_add(
            account=locked.account,
            amount=excess,
            currency=locked.currency,
            kind=AccountCreditEntry.Kind.OVERPAYMENT,
            invoice_id=locked.pk,
            actor=actor,
            now=now,
        )
    data = {
        "payment_id": payment.pk,
        "paid_on": paid_on.isoformat(),
        "method": method,
        **_money_data(amount=amount, applied=applied, to_credit_balance=excess),
    }
    if locked.amount_due() <= 0:
        _transition_locked(
            locked, State.PAID, actor=actor, reason=f"payment recorded ({method})", now=now,
            data=data,
        )  # fmt: skip
    else:
        locked.save()
        _record_event(locked, InvoiceEvent.Kind.PAYMENT_RECORDED, actor=actor, data=data, now=now)
    outbox.payment_event_record(payment, "payment.recorded", now=now)
    return payment


@dataclass(frozen=True)
class CreditLine:
    """Credit `quantity` of the invoice line `line_item_id` at its unit price."""

    line_item_id: int
    quantity: Decimal


def _credit_lines_by_amount(
    invoice: Invoice, amount: Decimal, left: Mapping[tuple[str, Decimal], Decimal]
) -> list[CreditNoteLine]:
    """One line of `amount` at the invoice's one category and rate. An invoice that
    mixes them is credited by lines, or by an amount that is all that is left of it
    (one line per category and rate, each what is left of it)."""
    currency = invoice.currency
    _validate_money(amount, currency, field="amount")
    groups = [(key, net) for key, net in left.items() if net > 0] or list(left.items())[:1]
    if len(groups) == 1:
        [((category, rate), _net)] = groups
        return [
            CreditNoteLine(
                name="Credit",
                quantity=Decimal(1),
                unit_price=amount,
                cost=amount,
                vat_category=category,
                vat_rate=rate,
            )
        ]
    if amount != sum((net for _, net in groups), ZERO):
        rates = ", ".join(f"{category} {rate.normalize():f}%" for (category, rate), _ in groups)
        raise InvoiceValidationError(
            f"this invoice mixes VAT rates ({rates}): credit it by lines, or credit all that "
            "is left of it",
            field="amount",
        )
    return [
        CreditNoteLine(
            name=f"Credit ({category} {rate.normalize():f}%)",
            quantity=Decimal(1),
            unit_price=net,
            cost=net,
            vat_category=category,
            vat_rate=rate,
        )
        for (category, rate), net in groups
    ]


def _credited_by_group(invoice: Invoice) -> dict[tuple[str, Decimal], tuple[Decimal, Decimal]]:
    """(net, VAT) already credited on the invoice, per category and rate."""
    done: dict[tuple[str, Decimal], tuple[Decimal, Decimal]] = {}
    for note in CreditNote.objects.filter(invoice=invoice).only(
        "tax_category", "vat_rate", "cost_without_vat", "vat_amount", "vat_breakdown_rows"
    ):
        for row in note.vat_breakdown():
            net, vat = done.get((row.category, row.rate), (ZERO, ZERO))
            done[(row.category, row.rate)] = (net + row.taxable, vat + row.vat)
    return done


def _credit_vat(
    invoice: Invoice, credit_lines: Sequence[CreditNoteLine], field_name: str
) -> list[tax.VatBreakdown]:
    """The note's VAT per category and rate: each group's net at its rate, rounded once;
    a note that credits the rest of a group takes exactly the VAT left of it, so the
    notes crediting a whole invoice add up to it, group by group."""
    currency = invoice.currency
    totals = {(row.category, row.rate): row for row in invoice.vat_breakdown()}
    done = _credited_by_group(invoice)
    nets: dict[tuple[str, Decimal], Decimal] = {}
    for line in credit_lines:
        key = (line.vat_category or "", line.vat_rate or ZERO)
        nets[key] = nets.get(key, ZERO) + line.cost
    rows = []
    for (category, rate), net in sorted(nets.items()):
        group = totals.get((category, rate))
        done_net, done_vat = done.get((category, rate), (ZERO, ZERO))
        net_left = (group.taxable if group else ZERO) - done_net
        if net > net_left:
            raise InvoiceValidationError(
                f"must be at most {quantize(net_left, currency)} at {category} "
                f"{rate.normalize():f}% (what is left to credit of it, without VAT)",
                field=field_name,
            )
        assert group is not None  # net > 0 = net_left otherwise
        vat = group.vat - done_vat if net == net_left else vat_amount(net, rate, currency)
        if vat < 0:
            raise InvoiceValidationError(
                f"would credit more VAT at {category} {rate.normalize():f}% than the invoice "
                "charged",
                field=field_name,
            )
        rows.append(tax.VatBreakdown(category, rate, quantize(net, currency), vat))
    return rows


def _credit_lines_by_line(invoice: Invoice, lines: Sequence[CreditLine]) -> list[CreditNoteLine]:
    """One credit line per requested line; a line is never credited beyond its
    quantity or its cost over all of the invoice's credit notes."""
    if not lines:
        raise InvoiceValidationError("give at least one line", field="lines")
    if len(lines) > MAX_LINE_ITEMS:
        raise InvoiceValidationError(f"at most {MAX_LINE_ITEMS} lines", field="lines")
    items = {item.pk: item for item in invoice.line_items.all()}
    credited: dict[int, tuple[Decimal, Decimal]] = {}
    for row in (
        CreditNoteLine.objects.filter(credit_note__invoice=invoice, line_item__isnull=False)
        .values("line_item_id")
        .annotate(quantity=Sum("quantity"), cost=Sum("cost"))
    ):
        credited[row["line_item_id"]] = (
            Decimal(str(row["quantity"])),
            Decimal(str(row["cost"])),
        )
    result: list[CreditNoteLine] = []
    seen: set[int] = set()
    for index, line in enumerate(lines):
        item = items.get(line.line_item_id)
        if item is None:
            raise InvoiceValidationError(
                "is not a line of this invoice", field=f"lines[{index}].line_item_id"
            )
        if item.pk in seen:
            raise InvoiceValidationError("is given twice", field=f"lines[{index}].line_item_id")
        seen.add(item.pk)
        quantity = line.quantity
        field_name = f"lines[{index}].quantity"
        if quantity <= 0:
            raise InvoiceValidationError("must be greater than 0", field=field_name)
        if quantity != quantity.quantize(Decimal(1).scaleb(-QUANTITY_DECIMAL_PLACES)):
            raise InvoiceValidationError(
                f"must have at most {QUANTITY_DECIMAL_PLACES} decimal places", field=field_name
            )
        done_quantity, done_cost = credited.get(item.pk, (ZERO, ZERO))
        left_quantity, left_cost = item.quantity - done_quantity, item.cost - done_cost
        if quantity > left_quantity:
            raise InvoiceValidationError(
                f"must be at most {left_quantity.normalize():f} (what is left of the line)",
                field=field_name,
            )
        # The rest of a line is credited at exactly what is left of its cost.
        cost = (
            left_cost
            if quantity == left_quantity
            else min(line_cost(quantity, item.unit_price, invoice.currency), left_cost)
        )
        if cost <= 0:
            raise InvoiceValidationError("credits nothing", field=field_name)
        category, rate = invoice.line_tax(item.vat_category, item.vat_rate)
        result.append(
            CreditNoteLine(
                line_item=item,
                name=item.name,
                quantity=quantity,
                unit_price=item.unit_price,
                cost=cost,
                vat_category=category,
                vat_rate=rate,
            )
        )
    return result


def _card_purchase_left(invoice: Invoice) -> tuple[PaymentTransaction | None, Decimal]:
    """The invoice's card purchase and how much of it is not refunded yet."""
    purchase = (
        PaymentTransaction.objects.filter(
            invoice=invoice, method=PaymentTransaction.Method.CREDIT_CARD
        )
        .successful_purchases()
        .first()
    )
    if purchase is None:
        return None, ZERO
    refunded = PaymentTransaction.objects.filter(
        invoice=invoice, action=PaymentTransaction.Action.REFUND, success=True
    ).aggregate(total=Sum("amount"))["total"]
    return purchase, purchase.amount - Decimal(str(refunded or 0))


@transaction.atomic
def credit_note_create(
    *,
    invoice: Invoice,
    reason: str,
    amount: Decimal | None = None,
    lines: Sequence[CreditLine] | None = None,
    refund: bool = False,
    actor: str,
    gateway: PaymentGateway | None = None,
    now: dt.datetime | None = None,
) -> CreditNote:
    """Credit an issued invoice by a net `amount` or by `lines`; never beyond its total.

    VAT is the invoice's rate with the invoice's rounding (the note's total is
    net + VAT); the note that credits the last of the invoice's net amount takes
    exactly the VAT left, so notes crediting a whole invoice add up to it.
    Checked under the invoice's row lock, so parallel notes queue and the ones
    that would exceed the total are refused.

    The money: first what is still due goes down; the rest comes out of what
    was paid and is refunded through the gateway (`refund`, against the card
    purchase) or added to the account's credit balance (as is any part that
    came out of credit applied at issue). An outstanding invoice with nothing
    left due becomes `paid`.
    """
    now = now or timezone.now()
    reason = (reason or "").strip()
    if not reason:
        raise InvoiceValidationError("can't be blank", field="reason")
    if (amount is None) == (lines is None):
        raise InvoiceValidationError("give either amount or lines", field="amount")
    locked = _lock_invoice(invoice)
    if locked.state not in Invoice.ISSUED_STATES:
        raise InvoiceLocked(
            f"Invoice {locked.pk} is {locked.state}: only issued invoices (pending, unpaid, "
            "paid, failed) can be credited",
            field="state",
        )
    currency = locked.currency
    field_name = "amount" if amount is not None else "lines"
    if amount is not None:
        done = _credited_by_group(locked)
        left = {
            (row.category, row.rate): row.taxable
            - done.get((row.category, row.rate), (ZERO, ZERO))[0]
            for row in locked.vat_breakdown()
        }
        net_left = sum(left.values(), ZERO)
        if amount > net_left:
            raise InvoiceValidationError(
                f"must be at most {quantize(net_left, currency)} (what is left to credit of "
                "the invoice, without VAT)",
                field=field_name,
            )
        credit_lines = _credit_lines_by_amount(locked, amount, left)
    else:
        credit_lines = _credit_lines_by_line(locked, lines or ())
    breakdown = _credit_vat(locked, credit_lines, field_name)
    net = sum((row.taxable for row in breakdown), ZERO)
    vat = sum((row.vat for row in breakdown), ZERO)
    total_left = locked.cost - locked.amount_credited
    total = net + vat
    if total > total_left or vat < 0:
        raise InvoiceValidationError(
            f"the credit's total {total} would exceed what is left to credit of the invoice "
            f"({quantize(total_left, currency)})",
            field=field_name,
        )

    # Where the money goes.
    due = max(locked.amount_due(), ZERO)
    reduced = min(total, due)
    excess = total - reduced
    from_paid = min(excess, locked.amount_paid)
    from_applied = excess - from_paid
    refunded = ZERO
    refund_payment: dict | None = None
    if refund:
        if from_paid <= 0:
            raise InvoiceValidationError(
                "nothing paid is credited: the credit only reduces what is due", field="refund"
            )
        purchase, refundable = _card_purchase_left(locked)
        if purchase is None or refundable < from_paid:
            raise InvoiceValidationError(
                "the invoice was not paid by card through the gateway (or not that much of "
                "it): omit refund to add the credit to the customer's balance",
                field="refund",
            )
        gateway = gateway or get_gateway()
        result = gateway.refund(
            account=locked.account,
            amount=from_paid,
            currency=currency,
            reference=purchase.reference,
            description=f"Credit on invoice {locked.friendly_id}",
        )
        if not result.success:
            raise RefundFailed(f"The gateway refused the refund: {result.message}")
        refunded = from_paid
        refund_payment = {
            "reference": result.reference,
            "message": result.message[:1024],
            "test": result.test,
            "gateway_response": result.response,
            "card_brand": purchase.card_brand,
            "card_last4": purchase.card_last4,
        }
    to_balance = excess - refunded

    # Numbered last: the counter is the last lock taken, held the shortest.
    series = f"{CREDIT_NOTE_PREFIX}-{now.year:04d}"
    note = CreditNote.objects.create(
        invoice=locked,
        account=locked.account,
        number=f"{series}-{_next_number(series, now):08d}",
        issued_on=now.date(),
        reason=reason,
        currency=currency,
        vat_rate=locked.vat_rate,
        tax_treatment=locked.tax_treatment,
        tax_category=locked.tax_category,
        tax_mention=locked.tax_mention,
        tax_exemption_reason=locked.tax_exemption_reason,
        cost_without_vat=net,
        vat_amount=vat,
        cost=total,
        vat_breakdown_rows=[
            {
                "category": row.category,
                "rate": str(row.rate),
                "taxable": str(row.taxable),
                "vat": str(row.vat),
            }
            for row in breakdown
        ],  # fmt: skip
        amount_due_reduced=reduced,
        amount_refunded=refunded,
        amount_to_balance=to_balance,
        buyer_details=locked.buyer_details,
        seller_details=locked.seller_details,
        actor=actor,
        created_at=now,
    )
    for line in credit_lines:
        line.credit_note = note
    CreditNoteLine.objects.bulk_create(credit_lines)
    refund_row = None
    if refund_payment is not None:
        refund_row = PaymentTransaction.objects.create(
            invoice=locked,
            account=locked.account,
            amount=refunded,
            currency=currency,
            action=PaymentTransaction.Action.REFUND,
            success=True,
            method=PaymentTransaction.Method.CREDIT_CARD,
            created_at=now,
            **refund_payment,
        )
    if to_balance > 0:
        account_credit_add(
            account=locked.account,
            amount=to_balance,
            currency=currency,
            kind=AccountCreditEntry.Kind.CREDIT_NOTE,
            invoice_id=locked.pk,
            credit_note_id=note.pk,
            actor=actor,
            now=now,
        )
    locked.amount_credited += total
    locked.amount_paid -= from_paid
    locked.credit_applied -= from_applied
    data = {
        "credit_note_id": note.pk,
        "number": note.number,
        **_money_data(
            total=total, due_reduced=reduced, refunded=refunded, to_credit_balance=to_balance
        ),
    }
    if locked.state in Invoice.OUTSTANDING_STATES and locked.amount_due() <= 0:
        _transition_locked(
            locked, State.PAID, actor=actor, reason=f"credited ({note.number})", now=now,
            data=data,
        )  # fmt: skip
    else:
        locked.save()
        _record_event(
            locked, InvoiceEvent.Kind.CREDIT_NOTE, actor=actor, reason=reason, data=data, now=now
        )
    credit_note_issued.send(sender=CreditNote, credit_note_id=note.pk)
    outbox.credit_note_issued_record(note, now=now)  # webhooks, the buyer's e-mail
    if refund_row is not None:
        outbox.payment_event_record(refund_row, "payment.refunded", now=now)
    return note


# --- bulk writes for billing runs ------------------------------------------------


@dataclass(frozen=True)
class LineSpec:
    """A line a billing run wants on an account's background invoice of a month.

    `source` names the line within its invoice (unique per invoice, e.g.
    `usage:EC2:us-west-1`): a spec whose source is already on the invoice
    replaces that line's amounts, any other is added as a new line.
    """

    name: str
    quantity: Decimal
    unit_price: Decimal
    type: str
    source: str
    description: str = ""


@dataclass
class BackgroundLinesResult:
    """What `invoices_upsert_background_lines` did, for the run's report."""

    # The id of every line now holding a spec, by (account_id, source).
    line_ids: dict[tuple[int, str], int] = field(default_factory=dict)
    invoices_created: int = 0
    invoices_updated: int = 0
    # The accounts whose invoice this call created (none of its lines existed before).
    created_for: set[int] = field(default_factory=set)
    lines_created: int = 0
    lines_updated: int = 0
    lines_removed: int = 0
    # Net amount (without VAT) added to the invoices, per currency.
    amount: dict[str, Decimal] = field(default_factory=dict)
    # Accounts left alone: the month's background invoice is already issued,
    # the account is not billable, or its lines break a limit ({account: why}).
    skipped_issued: set[int] = field(default_factory=set)
    skipped_unbillable: set[int] = field(default_factory=set)
    rejected: dict[int, str] = field(default_factory=dict)


def _event(
    invoice_id: int,
    kind: str,
    *,
    actor: str,
    from_state: str = "",
    to_state: str = "",
    reason: str = "",
    data: dict | None = None,
    now: dt.datetime,
) -> InvoiceEvent:
    """An unsaved event row: `_record_event` saves one, the bulk writer many at once."""
    return InvoiceEvent(
        invoice_id=invoice_id,
        kind=kind,
        actor=actor,
        from_state=from_state,
        to_state=to_state,
        reason=reason,
        data=data or {},
        created_at=now,
        updated_at=now,
    )


def _line_name(spec: LineSpec) -> str:
    return spec.name.strip()[:255]


def _check_specs(specs: Sequence[LineSpec]) -> str | None:
    """Why these lines cannot go on one invoice, or None."""
    sources: set[str] = set()
    for spec in specs:
        if not spec.source or spec.source in sources:
            return f"line {spec.source!r}: each line needs its own non-empty source"
        sources.add(spec.source)
        if not spec.name or not spec.name.strip():
            return f"line {spec.source!r}: name can't be blank"
        if spec.type not in LineItem.Type.values:
            return f"line {spec.source!r}: unknown type {spec.type!r}"
        try:
            _validate_line_amounts(spec.quantity, spec.unit_price)
        except InvoiceValidationError as exc:
            return f"line {spec.source!r}: {exc.field} {exc.message}"
        if spec.unit_price != spec.unit_price.quantize(_UNIT_PRICE_STEP):
            return (
                f"line {spec.source!r}: unit_price has more than "
                f"{UNIT_PRICE_DECIMAL_PLACES} decimal places"
            )
    return None


@transaction.atomic
def invoices_upsert_background_lines(
    *,
    period: dt.date,
    lines_by_account: Mapping[int, Sequence[LineSpec]],
    actor: str,
    reason: str = "",
    now: dt.datetime | None = None,
    replace_prefixes: tuple[str, ...] = (),
) -> BackgroundLinesResult:
    """Put lines on each account's background invoice of `period`, in bulk.

    The invoice is created (open) when the account has none that is not
    cancelled; an open or finalized one is extended; an issued one is never
    touched (the account is reported in `skipped_issued`). A line whose source
    is already on the invoice is replaced when its quantity, unit price, name or
    description changed, and left as it is otherwise. Lines follow the rules of
    `line_item_add` (amount limits, cost = round(quantity x unit price)), totals
    those of `_refresh_totals`, VAT and currency the buyer account's live terms;
    each changed invoice gets one `line_added` event. Accounts whose lines break
    a limit are refused whole (`rejected`), the others are written.

    `replace_prefixes` makes the specs the whole set of lines with those source
    prefixes: a line of an account in `lines_by_account` (its list may be empty)
    whose source starts with one of them and that no spec names is removed
    from the open or finalized invoice (records it billed are unlinked). A run
    that recomputes a month from scratch passes the prefixes of its lines.

    Locks, in the documented order: the accounts, then their invoices, so two
    runs over the same accounts queue and the second finds the work done.
    Rows are written with a few bulk statements whatever the number of
    accounts (COPY on PostgreSQL).
    """
    now = now or timezone.now()
    period = validate_period(period, now)
    result = BackgroundLinesResult()
    wanted = {
        pk: list(specs) for pk, specs in lines_by_account.items() if specs or replace_prefixes
    }
    if not wanted:
        return result
    accounts = {
        account.pk: account
        for account in Account.objects.select_for_update()
        .billable()
        .filter(pk__in=sorted(wanted))
        .order_by("pk")
    }
    result.skipped_unbillable = set(wanted) - set(accounts)
    invoices = {
        invoice.account_id: invoice
        for invoice in Invoice.objects.select_for_update()
        .filter(
            account_id__in=list(accounts),
            period=period,
            creation_type=Invoice.CreationType.BACKGROUND,
        )
        .exclude(state=State.CANCELLED)
        .order_by("pk")
    }
    result.skipped_issued = {pk for pk, invoice in invoices.items() if not invoice.is_editable}
    for pk in accounts:
        problem = None if pk in result.skipped_issued else _check_specs(wanted[pk])
        if problem is not None:
            result.rejected[pk] = problem
    billable = [
        pk for pk in accounts if pk not in result.skipped_issued and pk not in result.rejected
    ]

    # Every line of the invoices being extended: (invoice, source) -> line.
    # A line's own VAT category and rate, by (invoice, source): the specs' lines have none.
    existing: dict[int, dict[str, tuple]] = {}
    line_taxes: dict[tuple[int, str], tuple[str | None, Decimal | None]] = {}
    for row in LineItem.objects.filter(
        invoice_id__in=[invoices[pk].pk for pk in billable if pk in invoices]
    ).values_list("invoice_id", "id", "source", "name", "description", "quantity",
                  "unit_price", "cost", "vat_category", "vat_rate"):  # fmt: skip
        source = row[2] or f"#{row[1]}"
        existing.setdefault(row[0], {})[source] = row[1:8]
        if row[8] is not None:
            line_taxes[(row[0], source)] = (row[8], row[9])

    # Decide everything in memory first, so a limit breached by the invoice's
    # new total refuses the account before anything is written.
    plans: list[tuple[int, Invoice, bool, Decimal, list[LineSpec], list[tuple]]] = []
    removed: list[int] = []
    removals: dict[int, int] = {}
    for pk in billable:
        account = accounts[pk]
        found = invoices.get(pk)
        is_new = found is None
        invoice = found or Invoice(
            account_id=pk,
            period=period,
            creation_type=Invoice.CreationType.BACKGROUND,
            state=State.OPEN,
            created_at=now,
            updated_at=now,
        )
        before = ZERO if is_new else invoice.cost_without_vat
        _apply_live_terms(invoice, account)
        lines = existing.get(invoice.pk, {}) if not is_new else {}
        costs = {source: line[-1] for source, line in lines.items()}
        created: list[LineSpec] = []
        updated: list[tuple] = []
        for spec in wanted[pk]:
            cost = line_cost(spec.quantity, spec.unit_price, invoice.currency)
            current = lines.get(spec.source)
            if current is None:
                created.append(spec)
            elif (current[2], current[3], current[4], current[5]) != (
                _line_name(spec), spec.description, spec.quantity, spec.unit_price
            ):  # fmt: skip
                updated.append(
                    (current[0], _line_name(spec), spec.description, spec.quantity,
                     spec.unit_price, cost, spec.type, now)
                )  # fmt: skip
            else:
                result.line_ids[(pk, spec.source)] = current[0]
                continue
            costs[spec.source] = cost
        stale = []
        if replace_prefixes:
            names = {spec.source for spec in wanted[pk]}
            stale = [
                line[0]
                for source, line in lines.items()
                if source.startswith(replace_prefixes) and source not in names
            ]
            for source in [s for s in costs if s.startswith(replace_prefixes) and s not in names]:
                del costs[source]
        if is_new and not created:
            continue
        if not is_new and not created and not updated and not stale:
            continue
        cost_without_vat, vat, total = _totals_of_groups(
            invoice,
            [
                (*line_taxes.get((invoice.pk, source), (None, None)), cost)
                for source, cost in costs.items()
            ],
        )
        if cost_without_vat > MAX_AMOUNT or total > MAX_AMOUNT:
            result.rejected[pk] = f"the invoice total would exceed {MAX_AMOUNT}"
            continue
        invoice.cost_without_vat, invoice.vat_amount, invoice.cost = cost_without_vat, vat, total
        invoice.updated_at = now
        plans.append((pk, invoice, is_new, before, created, updated))
        removed.extend(stale)
        if stale:
            result.lines_removed += len(stale)
            removals[invoice.pk] = len(stale)

    if removed:
        # Through the ORM, so the usage records they billed are unlinked (SET_NULL).
        LineItem.objects.filter(pk__in=removed).delete()
    new_invoices = [invoice for _, invoice, is_new, *_ in plans if is_new]
    Invoice.objects.bulk_create(new_invoices, batch_size=1000)
    events = [
        _event(invoice.pk, InvoiceEvent.Kind.CREATED, actor=actor, to_state=State.OPEN,
               reason=reason, now=now)
        for invoice in new_invoices
    ]  # fmt: skip
    insert_rows(
        LineItem,
        ("invoice_id", "name", "description", "quantity", "unit_price", "cost", "type",
         "source", "contract_type", "created_at", "updated_at"),
        [
            (invoice.pk, _line_name(spec), spec.description, spec.quantity,
             spec.unit_price, line_cost(spec.quantity, spec.unit_price, invoice.currency),
             spec.type, spec.source, "", now, now)
            for _, invoice, _, _, created, _ in plans
            for spec in created
        ],
    )  # fmt: skip
    update_rows(
        LineItem,
        ("name", "description", "quantity", "unit_price", "cost", "type", "updated_at"),
        [row for *_, updated in plans for row in updated],
    )
    update_rows(
        Invoice,
        ("currency", "vat_rate", "vat_code", "cost_without_vat", "vat_amount", "cost",
         "updated_at"),
        [
            (invoice.pk, invoice.currency, invoice.vat_rate, invoice.vat_code,
             invoice.cost_without_vat, invoice.vat_amount, invoice.cost, now)
            for _, invoice, is_new, *_ in plans
            if not is_new
        ],
    )  # fmt: skip

    # The ids of the lines just written (the others were filled in above).
    account_of = {invoice.pk: pk for pk, invoice, *_ in plans}
    sources = {pk: {spec.source for spec in wanted[pk]} for pk in account_of.values()}
    for line_id, invoice_id, source in LineItem.objects.filter(
        invoice_id__in=list(account_of), source__gt=""
    ).values_list("id", "invoice_id", "source"):
        pk = account_of[invoice_id]
        if source in sources[pk]:
            result.line_ids[(pk, source)] = line_id

    for _, invoice, is_new, before, created, updated in plans:
        added = quantize(invoice.cost_without_vat - before, invoice.currency)
        result.amount[invoice.currency] = result.amount.get(invoice.currency, ZERO) + added
        result.lines_created += len(created)
        result.lines_updated += len(updated)
        if is_new:
            result.invoices_created += 1
            result.created_for.add(pk)
        else:
            result.invoices_updated += 1
        events.append(
            _event(
                invoice.pk,
                InvoiceEvent.Kind.LINE_ADDED,
                actor=actor,
                reason=reason,
                data={
                    "lines_created": len(created),
                    "lines_updated": len(updated),
                    **({"lines_removed": removals[invoice.pk]} if invoice.pk in removals else {}),
                    "cost_without_vat": str(invoice.cost_without_vat),
                    "added": str(added),
                },
                now=now,
            )
        )
    InvoiceEvent.objects.bulk_create(events, batch_size=1000)
    representations.invoices_changed(invoice.pk for _, invoice, *_ in plans)
    return result
