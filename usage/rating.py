"""Rating: pricing a month of usage and prorating plan fees. Pure functions, no database.

One small class per pricing model, each with `lines(units)`: the priced parts
of a charge (one per tier used, flat amounts on their own), each a quantity
and a unit price. An invoice line's cost is round(quantity x unit_price), so
a charge's amount is the sum of its parts' rounded costs and every invoice
identity still holds.

Tiers are ascending with inclusive upper bounds (`up_to`), the last one open
(`up_to` null): with [1000, 10000, null], units 1..1,000 are in the first
tier, 1,001..10,000 in the second, the rest in the third.

Days are inclusive ranges of dates; a month is its first day (billing.lib.months).
Lines are `invoices.services.LineSpec`, the form the billing run writes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal, InvalidOperation

from billing.lib import months
from billing.lib.money import ZERO, line_cost, quantize
from invoices.services import LineSpec

ONE = Decimal(1)
PRICE_PLACES = 8
QUANTITY_PLACES = 4
MAX_TIERS = 50
NAME_MAX = 255  # invoices.models.LineItem.name

TYPE_PLAN_FEE = "plan_fee"  # invoices.models.LineItem.Type.PLAN_FEE
TYPE_USAGE = "usage"  # invoices.models.LineItem.Type.USAGE


# --- numbers and labels ----------------------------------------------------------


def format_quantity(value: Decimal) -> str:
    """12000 -> "12,000"; 1.5 -> "1.5"."""
    if value == value.to_integral_value():
        return f"{int(value):,}"
    return format(value.normalize(), ",f")


def format_price(value: Decimal) -> str:
    """At least two decimals, no trailing zeros beyond: 5 -> "5.00", 0.00500000 -> "0.005"."""
    normalized = value.normalize()
    exponent = normalized.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -2:
        return format(value.quantize(Decimal("0.01")), "f")
    return format(normalized, "f")


def format_days(first: dt.date, last: dt.date) -> str:
    """ "11-30 Nov 2026"; across months "28 Nov-3 Dec 2026"."""
    if (first.year, first.month) == (last.year, last.month):
        return f"{first.day}-{last.day} {last:%b %Y}"
    return f"{first.day} {first:%b}-{last.day} {last:%b %Y}"


# --- tiers -----------------------------------------------------------------------


class TierError(ValueError):
    """A bad tier list; `field` is the path of the bad value, e.g. `tiers[1].up_to`."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Tier:
    up_to: Decimal | None
    unit_amount: Decimal
    flat_amount: Decimal = ZERO

    def as_json(self) -> dict[str, str | None]:
        return {
            "up_to": None if self.up_to is None else str(self.up_to),
            "unit_amount": str(self.unit_amount),
            "flat_amount": str(self.flat_amount),
        }


def _decimal(value: object, field: str, *, places: int) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, str, Decimal)):
        raise TierError(field, "must be a number")
    try:
        number = Decimal(value.strip()) if isinstance(value, str) else Decimal(value)
    except InvalidOperation:
        raise TierError(field, "must be a number") from None
    if not number.is_finite():
        raise TierError(field, "must be a finite number")
    if number < 0:
        raise TierError(field, "must not be negative")
    if number >= Decimal(10) ** 14:
        raise TierError(field, "is too large")
    if number != number.quantize(Decimal(1).scaleb(-places)):
        raise TierError(field, f"must have at most {places} decimal places")
    return number


def parse_tiers(raw: object, *, field: str = "tiers") -> tuple[Tier, ...]:
    """Tiers from their JSON form ({"up_to", "unit_amount", "flat_amount"} items).

    Ascending `up_to`, each above zero, the last one null and only the last.
    Raises TierError naming the bad value.
    """
    if not isinstance(raw, (list, tuple)):
        raise TierError(field, "must be a list of tiers")
    if not raw:
        raise TierError(field, "needs at least one tier")
    if len(raw) > MAX_TIERS:
        raise TierError(field, f"may have at most {MAX_TIERS} tiers")
    tiers: list[Tier] = []
    previous = ZERO
    for index, item in enumerate(raw):
        path = f"{field}[{index}]"
        if not isinstance(item, dict):
            raise TierError(path, "must be an object with up_to, unit_amount, flat_amount")
        unknown = sorted(set(item) - {"up_to", "unit_amount", "flat_amount"})
        if unknown:
            raise TierError(f"{path}.{unknown[0]}", "unknown field")
        last = index == len(raw) - 1
        up_to_raw = item.get("up_to")
        if up_to_raw is None:
            if not last:
                raise TierError(f"{path}.up_to", "only the last tier may be open (null)")
            up_to = None
        else:
            if last:
                raise TierError(f"{path}.up_to", "the last tier must be open: null")
            up_to = _decimal(up_to_raw, f"{path}.up_to", places=QUANTITY_PLACES)
            if up_to <= previous:
                raise TierError(
                    f"{path}.up_to",
                    "must be above zero" if index == 0 else "must be above the previous up_to",
                )
            previous = up_to
        if "unit_amount" not in item or item["unit_amount"] is None:
            raise TierError(f"{path}.unit_amount", "is required")
        unit_amount = _decimal(item["unit_amount"], f"{path}.unit_amount", places=PRICE_PLACES)
        flat_raw = item.get("flat_amount")
        flat = (
            ZERO
            if flat_raw is None
            else _decimal(flat_raw, f"{path}.flat_amount", places=PRICE_PLACES)
        )
        tiers.append(Tier(up_to, unit_amount, flat))
    return tuple(tiers)


def _tier_bounds(tiers: Sequence[Tier]) -> list[tuple[Decimal, Decimal | None]]:
    """(lower, upper) of each tier: units in (lower, upper]."""
    bounds = []
    lower = ZERO
    for tier in tiers:
        bounds.append((lower, tier.up_to))
        if tier.up_to is not None:
            lower = tier.up_to
    return bounds


def tier_label(lower: Decimal, upper: Decimal | None, first: bool) -> str:
    """ "0-1,000", "1,001-10,000", "above 10,000"."""
    if upper is None:
        return "all units" if first else f"above {format_quantity(lower)}"
    if first:
        return f"0-{format_quantity(upper)}"
    start = lower + 1 if lower == lower.to_integral_value() else lower
    return f"{format_quantity(start)}-{format_quantity(upper)}"


# --- pricing models --------------------------------------------------------------


@dataclass(frozen=True)
class PricePart:
    """One priced part of a charge: `quantity` x `unit_price`.

    `key` tells parts of one charge apart ("units", "tier2", "tier2:flat");
    `label` says which units it covers ("1,001-10,000"), empty when all.
    """

    key: str
    label: str
    quantity: Decimal
    unit_price: Decimal
    flat: bool = False

    def cost(self, currency: str) -> Decimal:
        return line_cost(self.quantity, self.unit_price, currency)


def _billable(units: Decimal, free_units: Decimal) -> Decimal:
    return max(units - free_units, ZERO)


def _free_part(units: Decimal, free_units: Decimal) -> list[PricePart]:
    """The free units used, as a line at 0 (so the invoice shows them, and every charge
    with usage has a line to link its records to)."""
    used = min(units, free_units)
    if used <= 0:
        return []
    return [PricePart("free", f"{format_quantity(free_units)} free", used, ZERO)]


@dataclass(frozen=True)
class PerUnit:
    """`unit_amount` per unit after `free_units`."""

    unit_amount: Decimal
    free_units: Decimal = ZERO

    def lines(self, units: Decimal) -> list[PricePart]:
        parts = _free_part(units, self.free_units)
        billable = _billable(units, self.free_units)
        if billable > 0:
            label = f"above {format_quantity(self.free_units)} free" if self.free_units else ""
            parts.append(PricePart("units", label, billable, self.unit_amount))
        return parts


@dataclass(frozen=True)
class Graduated:
    """Each unit priced in its own tier, plus the flat amount of every tier reached."""

    tiers: tuple[Tier, ...]

    def lines(self, units: Decimal) -> list[PricePart]:
        parts: list[PricePart] = []
        for number, (tier, (lower, upper)) in enumerate(
            zip(self.tiers, _tier_bounds(self.tiers), strict=True), start=1
        ):
            if units <= lower:
                break
            in_tier = (units if upper is None else min(units, upper)) - lower
            label = tier_label(lower, upper, number == 1)
            parts.append(PricePart(f"tier{number}", label, in_tier, tier.unit_amount))
            if tier.flat_amount:
                parts.append(PricePart(f"tier{number}:flat", label, ONE, tier.flat_amount, True))
        return parts


@dataclass(frozen=True)
class Volume:
    """Every unit at the price of the tier the total reaches, plus that tier's flat amount."""

    tiers: tuple[Tier, ...]

    def tier_for(self, units: Decimal) -> int:
        """The index of the tier `units` reach."""
        for index, tier in enumerate(self.tiers):
            if tier.up_to is None or units <= tier.up_to:
                return index
        return len(self.tiers) - 1

    def lines(self, units: Decimal) -> list[PricePart]:
        if units <= 0:
            return []
        index = self.tier_for(units)
        tier = self.tiers[index]
        lower, upper = _tier_bounds(self.tiers)[index]
        label = tier_label(lower, upper, index == 0)
        parts = [PricePart(f"tier{index + 1}", label, units, tier.unit_amount)]
        if tier.flat_amount:
            parts.append(PricePart(f"tier{index + 1}:flat", label, ONE, tier.flat_amount, True))
        return parts


@dataclass(frozen=True)
class Package:
    """`unit_amount` per started block of `package_size` units after `free_units`."""

    unit_amount: Decimal
    package_size: int
    free_units: Decimal = ZERO

    def lines(self, units: Decimal) -> list[PricePart]:
        parts = _free_part(units, self.free_units)
        billable = _billable(units, self.free_units)
        if billable <= 0:
            return parts
        blocks = (billable / Decimal(self.package_size)).to_integral_value(rounding=ROUND_CEILING)
        label = f"packages of {format_quantity(Decimal(self.package_size))}"
        if self.free_units:
            label += f" above {format_quantity(self.free_units)} free"
        parts.append(PricePart("packages", label, blocks, self.unit_amount))
        return parts


PricingModel = PerUnit | Graduated | Volume | Package


def pricing_model(
    model: str,
    *,
    unit_amount: Decimal = ZERO,
    free_units: Decimal = ZERO,
    package_size: int | None = None,
    tiers: object = (),
) -> PricingModel:
    """The pricing model of a charge from its stored fields."""
    if model == "per_unit":
        return PerUnit(unit_amount, free_units)
    if model == "package":
        if not package_size or package_size < 1:
            raise ValueError("a package charge needs a package_size of at least 1")
        return Package(unit_amount, int(package_size), free_units)
    if model == "graduated":
        return Graduated(parse_tiers(tiers))
    if model == "volume":
        return Volume(parse_tiers(tiers))
    raise ValueError(f"unknown pricing model {model!r}")


def charge_amount(model: PricingModel, units: Decimal, currency: str) -> Decimal:
    """What `units` cost under `model`: the sum of its parts' rounded costs."""
    return sum((part.cost(currency) for part in model.lines(units)), ZERO)


# --- aggregation -----------------------------------------------------------------


def aggregate(aggregation: str, records: Iterable[tuple[Decimal, str]]) -> Decimal:
    """A month's records of a metric, as (quantity, resource_id), added up the metric's way."""
    if aggregation == "sum":
        return sum((quantity for quantity, _ in records), ZERO)
    if aggregation == "max":
        return max((quantity for quantity, _ in records), default=ZERO)
    if aggregation == "count":
        return Decimal(sum(1 for _ in records))
    if aggregation == "unique_count":
        return Decimal(len({resource for _, resource in records}))
    raise ValueError(f"unknown aggregation {aggregation!r}")


# --- days and proration ------------------------------------------------------------


def active_days(
    start: dt.date, end: dt.date | None, month: dt.date
) -> tuple[dt.date, dt.date] | None:
    """The days of `month` a subscription from `start` to `end` (inclusive) covers, or None."""
    first = max(start, months.month_start(month))
    last = months.month_end(month) if end is None else min(end, months.month_end(month))
    return (first, last) if first <= last else None


def fee_days(
    start: dt.date, end: dt.date | None, trial_end: dt.date | None, month: dt.date
) -> tuple[dt.date, dt.date] | None:
    """The days of `month` that owe the recurring fee: active and past the trial."""
    active = active_days(start, end, month)
    if active is None:
        return None
    first, last = active
    if trial_end is not None:
        first = max(first, trial_end + dt.timedelta(days=1))
    return (first, last) if first <= last else None


def prorated_fee(amount: Decimal, days: int, month: dt.date, currency: str) -> Decimal:
    """amount x days / days in the month, rounded once to the currency."""
    return quantize(amount * days / months.days_in_month(month), currency)


# --- one subscription's month --------------------------------------------------------


@dataclass(frozen=True)
class ChargeTerms:
    metric_code: str
    metric_name: str
    unit: str
    aggregation: str
    model: PricingModel


@dataclass(frozen=True)
class SubscriptionTerms:
    """What rating needs of a subscription and its plan, read once from the database."""

    id: int
    plan_code: str
    plan_name: str
    currency: str
    amount: Decimal
    setup_fee: Decimal
    start_date: dt.date
    end_date: dt.date | None
    trial_end_date: dt.date | None
    charges: tuple[ChargeTerms, ...] = field(default_factory=tuple)


def plan_label(name: str) -> str:
    return name if name.lower().endswith(" plan") or name.lower() == "plan" else f"{name} plan"


def charge_source_prefix(subscription_id: int, metric_code: str) -> str:
    """Every line of one charge in one subscription has a source starting with this."""
    return f"charge:{subscription_id}:{metric_code}:"


def rate_subscription_month(
    terms: SubscriptionTerms, month: dt.date, usage: Mapping[str, Decimal]
) -> list[LineSpec]:
    """The invoice lines one subscription owes for `month`.

    `usage` is each metric's aggregated quantity within the subscription's
    active days of the month. Lines: the prorated recurring fee, the setup
    fee in the start month, then each charge's parts in plan order.
    """
    active = active_days(terms.start_date, terms.end_date, month)
    if active is None:
        return []
    currency = terms.currency
    plan = plan_label(terms.plan_name)
    lines: list[LineSpec] = []
    fee_range = fee_days(terms.start_date, terms.end_date, terms.trial_end_date, month)
    if fee_range is not None and terms.amount > 0:
        first, last = fee_range
        days = (last - first).days + 1
        total_days = months.days_in_month(month)
        lines.append(
            LineSpec(
                name=f"{plan}, {format_days(first, last)}"[:NAME_MAX],
                quantity=ONE,
                unit_price=prorated_fee(terms.amount, days, month, currency),
                type=TYPE_PLAN_FEE,
                source=f"plan:{terms.id}:fee:{first.isoformat()}-{last.isoformat()}",
                description=(
                    f"{plan}, {format_days(first, last)}: {days} of {total_days} days at "
                    f"{format_price(terms.amount)} {currency} a month"
                ),
            )
        )
    if terms.setup_fee > 0 and months.month_start(terms.start_date) == months.month_start(month):
        lines.append(
            LineSpec(
                name=f"{plan}, setup fee"[:NAME_MAX],
                quantity=ONE,
                unit_price=terms.setup_fee,
                type=TYPE_PLAN_FEE,
                source=f"setup:{terms.id}",
                description=f"{plan}, setup fee (subscribed {terms.start_date.isoformat()})",
            )
        )
    period = format_days(*active)
    for charge in terms.charges:
        units = usage.get(charge.metric_code, ZERO)
        unit = charge.unit or "units"
        for part in charge.model.lines(units):
            label = f", {part.label}" if part.label else ""
            if part.flat:
                name = f"{charge.metric_name}{label}, flat fee"
                detail = f"flat fee of the tier {part.label}"
            else:
                name = f"{charge.metric_name}{label} x {format_price(part.unit_price)}"
                detail = f"{format_quantity(part.quantity)} {unit}"
                if isinstance(charge.model, Package):
                    detail = f"{format_quantity(part.quantity)} packages"
            lines.append(
                LineSpec(
                    name=name[:NAME_MAX],
                    quantity=part.quantity,
                    unit_price=part.unit_price,
                    type=TYPE_USAGE,
                    source=charge_source_prefix(terms.id, charge.metric_code) + part.key,
                    description=(
                        f"{plan}, {period}: {detail}; {format_quantity(units)} {unit} in total"
                    ),
                )
            )
    return lines


def charge_line_sources(lines: Iterable[LineSpec]) -> dict[tuple[int, str], str]:
    """(subscription id, metric code) -> the source of the line its records link to:
    the charge's first line. Every charge with usage has one (free units included)."""
    targets: dict[tuple[int, str], str] = {}
    for line in lines:
        if line.source.startswith("charge:"):
            _, subscription_id, metric, _key = line.source.split(":", 3)
            targets.setdefault((int(subscription_id), metric), line.source)
    return targets


def lines_total(lines: Iterable[LineSpec], currency: str) -> Decimal:
    return sum((line_cost(line.quantity, line.unit_price, currency) for line in lines), ZERO)
