"""Writes of pricing: metrics, plans with their charges, and subscriptions.

Every way into a change (the /v1 API, the admin, seed_demo) calls these.
Locks are taken in the project's order: the account first, then its
subscriptions. An account's subscriptions never overlap: the database holds
at most one live (open-ended) subscription per account, and the services
check the ended ones under the account's row lock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, NoReturn

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from accounts.models import Account
from billing.lib.money import CURRENCIES, minor_units
from invoices.delivery import outbox
from usage import rating
from usage.exceptions import (
    PlanImmutable,
    PricingValidationError,
    SubscriptionConflict,
)
from usage.models import (
    PRICE_DECIMAL_PLACES,
    QUANTITY_DECIMAL_PLACES,
    Charge,
    Metric,
    Plan,
    Subscription,
    code_validator,
)

MAX_TRIAL_DAYS = 3650
MAX_PRICE = Decimal("999999999999.99")
MAX_CHARGES = 100
ONE_DAY = dt.timedelta(days=1)


def _check_code(code: str) -> None:
    try:
        code_validator(code)
    except ValidationError as exc:
        raise PricingValidationError(exc.messages[0], field="code") from None


def _check_price(value: Decimal, field: str, *, places: int = PRICE_DECIMAL_PLACES) -> None:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise PricingValidationError("must be a number", field=field)
    if value < 0:
        raise PricingValidationError("must not be negative", field=field)
    if value > MAX_PRICE:
        raise PricingValidationError(f"must be at most {MAX_PRICE}", field=field)
    if value != value.quantize(Decimal(1).scaleb(-places)):
        raise PricingValidationError(f"must have at most {places} decimal places", field=field)


# --- metrics -------------------------------------------------------------------------


def metric_create(*, code: str, name: str, unit: str = "", aggregation: str = "sum") -> Metric:
    _check_code(code)
    if aggregation not in Metric.Aggregation.values:
        raise PricingValidationError(
            f"must be one of {', '.join(Metric.Aggregation.values)}", field="aggregation"
        )
    if not name.strip():
        raise PricingValidationError("must not be blank", field="name")
    try:
        with transaction.atomic():
            return Metric.objects.create(code=code, name=name, unit=unit, aggregation=aggregation)
    except IntegrityError:
        raise PricingValidationError(f"a metric {code!r} already exists", field="code") from None


# --- plans ---------------------------------------------------------------------------


def charge_fields(raw: dict[str, Any], index: int, metrics: dict[str, Metric]) -> dict:
    """One charge's model fields, checked; errors name `charges[index].<field>`."""
    path = f"charges[{index}]"
    code = raw.get("metric")
    metric = metrics.get(code) if isinstance(code, str) else None
    if metric is None:
        raise PricingValidationError(f"no metric {code!r}", field=f"{path}.metric")
    model = raw.get("model", Charge.Model.PER_UNIT)
    if model not in Charge.Model.values:
        raise PricingValidationError(
            f"must be one of {', '.join(Charge.Model.values)}", field=f"{path}.model"
        )
    unit_amount = raw.get("unit_amount")
    free_units = raw.get("free_units")
    package_size = raw.get("package_size")
    tiers = raw.get("tiers")
    fields: dict[str, Any] = {
        "metric": metric,
        "model": model,
        "unit_amount": Decimal(0),
        "free_units": Decimal(0),
        "package_size": None,
        "tiers": [],
    }

    def refuse(name: str, why: str) -> NoReturn:
        raise PricingValidationError(why, field=f"{path}.{name}")

    if model in (Charge.Model.GRADUATED, Charge.Model.VOLUME):
        for name, value in (("unit_amount", unit_amount), ("free_units", free_units)):
            if value:
                refuse(name, f"not used by {model} charges: price each tier instead")
        if package_size is not None:
            refuse("package_size", f"not used by {model} charges")
        if tiers is None:
            refuse("tiers", f"is required for {model} charges")
        try:
            parsed = rating.parse_tiers(tiers, field=f"{path}.tiers")
        except rating.TierError as exc:
            raise PricingValidationError(exc.message, field=exc.field) from None
        fields["tiers"] = [tier.as_json() for tier in parsed]
        return fields
    if tiers:
        refuse("tiers", f"not used by {model} charges")
    if unit_amount is None:
        refuse("unit_amount", f"is required for {model} charges")
    _check_price(unit_amount, f"{path}.unit_amount")
    fields["unit_amount"] = unit_amount
    if free_units is not None:
        _check_price(free_units, f"{path}.free_units", places=QUANTITY_DECIMAL_PLACES)
        fields["free_units"] = free_units
    if model == Charge.Model.PACKAGE:
        if package_size is None:
            refuse("package_size", "is required for package charges")
        if isinstance(package_size, bool) or not isinstance(package_size, int):
            refuse("package_size", "must be a whole number of units")
        if not 1 <= package_size <= 10**12:
            refuse("package_size", "must be from 1 to 1000000000000")
        fields["package_size"] = package_size
    elif package_size is not None:
        refuse("package_size", "only package charges have a package_size")
    return fields


def _plan_fields(
    *,
    name: str,
    currency: str,
    amount: Decimal,
    setup_fee: Decimal,
    trial_days: int,
    charges: Sequence[dict[str, Any]],
) -> list[dict]:
    if not name.strip():
        raise PricingValidationError("must not be blank", field="name")
    if currency not in CURRENCIES:
        raise PricingValidationError("must be a supported ISO 4217 code", field="currency")
    places = minor_units(currency)
    _check_price(amount, "amount", places=places)
    _check_price(setup_fee, "setup_fee", places=places)
    if isinstance(trial_days, bool) or not 0 <= trial_days <= MAX_TRIAL_DAYS:
        raise PricingValidationError(f"must be from 0 to {MAX_TRIAL_DAYS}", field="trial_days")
    if len(charges) > MAX_CHARGES:
        raise PricingValidationError(f"at most {MAX_CHARGES} charges", field="charges")
    codes = {raw.get("metric") for raw in charges if isinstance(raw.get("metric"), str)}
    metrics = {metric.code: metric for metric in Metric.objects.filter(code__in=codes)}
    seen: set[str] = set()
    checked = []
    for index, raw in enumerate(charges):
        fields = charge_fields(raw, index, metrics)
        if fields["metric"].code in seen:
            raise PricingValidationError(
                "a plan has one charge per metric; this metric is charged twice",
                field=f"charges[{index}].metric",
            )
        seen.add(fields["metric"].code)
        checked.append(fields)
    return checked


@transaction.atomic
def plan_create(
    *,
    code: str,
    name: str,
    currency: str = "USD",
    amount: Decimal = Decimal(0),
    setup_fee: Decimal = Decimal(0),
    trial_days: int = 0,
    charges: Sequence[dict[str, Any]] = (),
) -> Plan:
    """A plan with its charges: `charges` are dicts with `metric` (a code), `model`,
    `unit_amount`, `free_units`, `package_size` and `tiers` as the API takes them."""
    _check_code(code)
    checked = _plan_fields(
        name=name,
        currency=currency,
        amount=amount,
        setup_fee=setup_fee,
        trial_days=trial_days,
        charges=charges,
    )
    if Plan.objects.filter(code=code).exists():
        raise PricingValidationError(f"a plan {code!r} already exists", field="code")
    try:
        with transaction.atomic():
            plan = Plan.objects.create(
                code=code,
                name=name,
                currency=currency,
                amount=amount,
                setup_fee=setup_fee,
                trial_days=trial_days,
            )
    except IntegrityError:
        raise PricingValidationError(f"a plan {code!r} already exists", field="code") from None
    Charge.objects.bulk_create(Charge(plan=plan, **fields) for fields in checked)
    return plan


def _lock_unsubscribed(plan: Plan) -> Plan:
    locked = Plan.objects.select_for_update().get(pk=plan.pk)
    if locked.subscriptions.exists():
        raise PlanImmutable(
            f"Plan {locked.code!r} has subscriptions and cannot change: publish a new plan "
            "and move the subscriptions to it (change_plan)."
        )
    return locked


@transaction.atomic
def plan_update(plan: Plan, **changes: Any) -> Plan:
    """Change a plan that nobody is subscribed to; `charges`, when given, replaces them all."""
    locked = _lock_unsubscribed(plan)
    unknown = set(changes) - {"name", "currency", "amount", "setup_fee", "trial_days", "charges"}
    if unknown:
        raise PricingValidationError("cannot be changed", field=sorted(unknown)[0])
    values = {
        name: changes.get(name, getattr(locked, name))
        for name in ("name", "currency", "amount", "setup_fee", "trial_days")
    }
    charges = changes.get("charges")
    current = [
        {
            "metric": charge.metric.code,
            "model": charge.model,
            "unit_amount": charge.unit_amount,
            "free_units": charge.free_units,
            "package_size": charge.package_size,
            "tiers": charge.tiers or None,
        }
        for charge in locked.charges.select_related("metric").order_by("id")
    ]
    checked = _plan_fields(**values, charges=current if charges is None else charges)
    for name, value in values.items():
        setattr(locked, name, value)
    locked.save()
    if charges is not None:
        locked.charges.all().delete()
        Charge.objects.bulk_create(Charge(plan=locked, **fields) for fields in checked)
    return locked


@transaction.atomic
def plan_delete(plan: Plan) -> None:
    _lock_unsubscribed(plan).delete()


# --- subscriptions ---------------------------------------------------------------------


def _lock_account(account: Account) -> Account:
    # The account row serialises every change to its subscriptions.
    return Account.objects.select_for_update().get(pk=account.pk)


def _check_plan_for(account: Account, plan: Plan, field: str = "plan") -> None:
    if plan.currency != account.currency:
        raise PricingValidationError(
            f"plan {plan.code!r} is priced in {plan.currency}; the customer is billed in "
            f"{account.currency}",
            field=field,
        )


def _trial_end(plan: Plan, start: dt.date) -> dt.date | None:
    return start + dt.timedelta(days=plan.trial_days - 1) if plan.trial_days else None


def _overlap(
    account: Account, first: dt.date, last: dt.date | None, exclude=()
) -> Subscription | None:
    qs = Subscription.objects.filter(account=account).exclude(pk__in=list(exclude))
    qs = qs.overlapping(first, last or dt.date.max)
    return qs.order_by("start_date").first()


@transaction.atomic
def subscription_create(*, account: Account, plan: Plan, start_date: dt.date) -> Subscription:
    """Subscribe `account` to `plan` from `start_date`, until cancelled."""
    account = _lock_account(account)
    if account.state == Account.State.DELETED:
        raise PricingValidationError("the customer is deleted", field="customer_id")
    _check_plan_for(account, plan)
    clash = _overlap(account, start_date, None)
    if clash is not None:
        raise SubscriptionConflict(
            f"The customer already has subscription {clash.pk} ({clash.plan.code}) from "
            f"{clash.start_date.isoformat()}"
            + (f" to {clash.end_date.isoformat()}" if clash.end_date else "")
            + ": change its plan or cancel it first."
        )
    subscription = Subscription.objects.create(
        account=account,
        plan=plan,
        start_date=start_date,
        trial_end_date=_trial_end(plan, start_date),
    )
    _announce("subscription.created", subscription)
    return subscription


def _announce(event_type: str, subscription: Subscription, **extra: Any) -> None:
    """Record the change's webhooks (its /v1 representation) in its transaction, through
    the invoices app's outbox."""
    from usage.api.v1.pricing_serializers import SubscriptionSerializer  # the API imports us

    data = {**SubscriptionSerializer(subscription).data, **extra}
    outbox.event_record(event_type=event_type, data=data)


def _lock_subscription(subscription: Subscription) -> tuple[Account, Subscription]:
    account = _lock_account(subscription.account)
    locked = Subscription.objects.select_for_update().select_related("plan").get(pk=subscription.pk)
    return account, locked


def _check_effective_day(subscription: Subscription, day: dt.date) -> None:
    if day <= subscription.start_date:
        raise PricingValidationError(
            f"must be after the subscription's start date {subscription.start_date.isoformat()}",
            field="date",
        )
    if subscription.end_date is not None and day > subscription.end_date + ONE_DAY:
        raise SubscriptionConflict(
            f"Subscription {subscription.pk} ended on {subscription.end_date.isoformat()}."
        )


@transaction.atomic
def subscription_change_plan(
    *, subscription: Subscription, plan: Plan, date: dt.date
) -> Subscription:
    """Move to `plan` from `date`: the old subscription ends the day before and a new one
    starts on the day (keeping any cancellation date and what is left of the trial)."""
    account, old = _lock_subscription(subscription)
    _check_effective_day(old, date)
    if plan.pk == old.plan_id:
        raise PricingValidationError("is the subscription's current plan", field="plan")
    _check_plan_for(account, plan)
    end = old.end_date
    trial_end = old.trial_end_date if old.trial_end_date and old.trial_end_date >= date else None
    old.end_date = date - ONE_DAY
    if old.trial_end_date is not None and old.trial_end_date > old.end_date:
        old.trial_end_date = old.end_date
    old.save(update_fields=["end_date", "trial_end_date", "updated_at"])
    new = Subscription.objects.create(
        account=account, plan=plan, start_date=date, end_date=end, trial_end_date=trial_end
    )
    _announce("subscription.updated", new, previous_subscription_id=old.pk)
    return new


@transaction.atomic
def subscription_cancel(*, subscription: Subscription, date: dt.date) -> Subscription:
    """End the subscription from `date` on: the day before is its last billed day."""
    _account, locked = _lock_subscription(subscription)
    _check_effective_day(locked, date)
    locked.end_date = date - ONE_DAY
    if locked.trial_end_date is not None and locked.trial_end_date > locked.end_date:
        locked.trial_end_date = locked.end_date
    locked.save(update_fields=["end_date", "trial_end_date", "updated_at"])
    _announce("subscription.cancelled", locked)
    return locked
