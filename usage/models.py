"""Usage records reported by clients, and the pricing that rates them.

Pricing: a Metric says how a month's records of one kind add up; a Plan is a
monthly fee, a setup fee, trial days and one Charge per metric (per unit,
graduated, volume or package); a Subscription puts an account on a plan for
a range of days. The monthly billing run rates each account's month with
usage.rating.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import ClassVar

from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Now
from django.utils import timezone

from accounts.models import CURRENCY_CHOICES, Account
from billing.lib.money import UNIT_PRICE_DECIMAL_PLACES
from billing.lib.months import month_bounds
from invoices.models import LineItem

CODE_MAX = 64
code_validator = RegexValidator(
    r"\A[a-z0-9][a-z0-9_.-]{0,63}\Z",
    "Use lowercase letters, digits, '_', '.' or '-' (starting with a letter or digit).",
)
# Prices: up to 8 decimals (usage is often priced in fractions of a cent).
PRICE_MAX_DIGITS = 28
PRICE_DECIMAL_PLACES = UNIT_PRICE_DECIMAL_PLACES
# Quantities: as many decimals as an invoice line's quantity holds (4), so a
# rated line shows exactly the quantity it bills.
QUANTITY_MAX_DIGITS = 18
QUANTITY_DECIMAL_PLACES = 4


def price_field(**kwargs) -> models.DecimalField:
    return models.DecimalField(
        max_digits=PRICE_MAX_DIGITS, decimal_places=PRICE_DECIMAL_PLACES, **kwargs
    )


def quantity_field(**kwargs) -> models.DecimalField:
    return models.DecimalField(
        max_digits=QUANTITY_MAX_DIGITS, decimal_places=QUANTITY_DECIMAL_PLACES, **kwargs
    )


class Metric(models.Model):
    """A kind of usage and how a month of its records adds up."""

    class Aggregation(models.TextChoices):
        SUM = "sum", "Sum of quantity"
        MAX = "max", "Maximum quantity"
        COUNT = "count", "Count of records"
        UNIQUE_COUNT = "unique_count", "Count of distinct resource ids"

    code = models.CharField(max_length=CODE_MAX, unique=True, validators=[code_validator])
    name = models.CharField(max_length=255)
    unit = models.CharField(max_length=64, blank=True, help_text="e.g. calls, GB, seats.")
    aggregation = models.CharField(
        max_length=16, choices=Aggregation.choices, default=Aggregation.SUM
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                name="metric_aggregation_valid",
                condition=Q(aggregation__in=["sum", "max", "count", "unique_count"]),
            ),
        ]

    def __str__(self) -> str:
        return self.code


class Plan(models.Model):
    """A price list: monthly fee, setup fee, trial days and one charge per metric.

    A plan that has subscriptions is immutable (usage.subscriptions refuses
    the change): publish a new plan and move the subscriptions to it.
    """

    code = models.CharField(max_length=CODE_MAX, unique=True, validators=[code_validator])
    name = models.CharField(max_length=255)
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES, default="USD")
    amount = price_field(
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Recurring monthly fee, prorated by day.",
    )
    setup_fee = price_field(
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Charged once, in the month a subscription starts.",
    )
    trial_days = models.PositiveIntegerField(
        default=0, help_text="Days from the start without the monthly fee."
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(name="plan_amount_non_negative", condition=Q(amount__gte=0)),
            models.CheckConstraint(
                name="plan_setup_fee_non_negative", condition=Q(setup_fee__gte=0)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class Charge(models.Model):
    """How a plan prices one metric.

    `tiers` (graduated and volume) is a list of {"up_to", "unit_amount",
    "flat_amount"} with decimal strings, ascending, the last `up_to` null;
    `up_to` is inclusive (0-1,000, then 1,001-10,000, ...).
    """

    class Model(models.TextChoices):
        PER_UNIT = "per_unit", "Per unit"
        GRADUATED = "graduated", "Graduated"
        VOLUME = "volume", "Volume"
        PACKAGE = "package", "Package"

    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="charges")
    metric = models.ForeignKey(Metric, on_delete=models.PROTECT, related_name="charges")
    model = models.CharField(max_length=16, choices=Model.choices, default=Model.PER_UNIT)
    unit_amount = price_field(
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Per unit (per_unit) or per started package (package).",
    )
    free_units = quantity_field(
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Units not charged each month (per_unit and package).",
    )
    package_size = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Units per package (package)."
    )
    tiers = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["plan_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "metric"], name="charge_one_per_metric"),
            models.CheckConstraint(
                name="charge_model_valid",
                condition=Q(model__in=["per_unit", "graduated", "volume", "package"]),
            ),
            models.CheckConstraint(
                name="charge_unit_amount_non_negative", condition=Q(unit_amount__gte=0)
            ),
            models.CheckConstraint(
                name="charge_free_units_non_negative", condition=Q(free_units__gte=0)
            ),
            models.CheckConstraint(
                name="charge_package_has_size",
                condition=~Q(model="package") | Q(package_size__gte=1),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.plan.code}: {self.metric.code} ({self.model})"


class SubscriptionQuerySet(models.QuerySet["Subscription"]):
    def overlapping(self, first_day, last_day) -> SubscriptionQuerySet:
        """Subscriptions active on at least one day of [first_day, last_day]."""
        return self.filter(start_date__lte=last_day).filter(
            Q(end_date__isnull=True) | Q(end_date__gte=first_day)
        )


class Subscription(models.Model):
    """An account on a plan from `start_date` to `end_date` (inclusive; null: until cancelled).

    An account has at most one live (open-ended) subscription, enforced by a
    partial unique constraint; usage.subscriptions also keeps an account's
    subscriptions from overlapping, under the account's row lock.
    """

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="subscriptions")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="subscriptions")
    start_date = models.DateField()
    end_date = models.DateField(
        null=True, blank=True, help_text="The last day billed; empty while live."
    )
    trial_end_date = models.DateField(
        null=True, blank=True, help_text="The last day of the trial (no monthly fee)."
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = SubscriptionQuerySet.as_manager()

    class Meta:
        ordering = ["account_id", "start_date", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account"],
                condition=Q(end_date__isnull=True),
                name="subscription_one_live_per_account",
            ),
            models.CheckConstraint(
                name="subscription_end_after_start",
                condition=Q(end_date__isnull=True) | Q(end_date__gte=F("start_date")),
            ),
            models.CheckConstraint(
                name="subscription_trial_after_start",
                condition=Q(trial_end_date__isnull=True) | Q(trial_end_date__gte=F("start_date")),
            ),
        ]
        indexes = [
            models.Index(fields=["plan", "start_date"], name="subscription_plan_idx"),
        ]

    def __str__(self) -> str:
        end = self.end_date.isoformat() if self.end_date else "..."
        return f"{self.account_id} on {self.plan.code} {self.start_date.isoformat()}-{end}"


class UsageRecordQuerySet(models.QuerySet["UsageRecord"]):
    def of_month(self, month: dt.date) -> UsageRecordQuerySet:
        """Records that started in `month` (UTC): the records its invoice bills."""
        start, end = month_bounds(month)
        return self.filter(start_time__gte=start, start_time__lt=end)

    def unbilled(self, month: dt.date) -> UsageRecordQuerySet:
        """Records of `month` that no invoice line bills yet: what a billing run picks up."""
        return self.of_month(month).filter(line_item__isnull=True)

    def prerated(self) -> UsageRecordQuerySet:
        """Records that carry their own `cost` (pre-rated), billed as they are;
        metered records (metric + quantity) are priced by the account's plan instead."""
        return self.filter(metric__isnull=True)


class UsageRecord(models.Model):
    """One metered use of a resource; `client_id` is the client's de-duplication key."""

    # No index of its own: the unique (account, client_id) and the report index
    # both lead with account_id, and every extra index slows ingestion.
    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="usage_records", db_index=False
    )
    client_id = models.CharField(max_length=128)
    resource_id = models.CharField(max_length=255)
    resource_name = models.CharField(max_length=255, blank=True)
    service = models.CharField(max_length=128)
    region = models.CharField(max_length=64)
    start_time = models.DateTimeField()
    end_time = models.DateTimeField()
    duration = models.BigIntegerField(help_text="Seconds.")
    # Pre-rated records carry `cost`; metered records carry
    # `metric` (a Metric code) and `quantity`, and are priced by the plan.
    cost = models.DecimalField(max_digits=18, decimal_places=6, null=True, blank=True)
    metric = models.CharField(max_length=CODE_MAX, null=True, blank=True)
    quantity = quantity_field(null=True, blank=True)
    # Indexed only where set (see Meta.indexes): records arrive unbilled, so a
    # full index would be maintained on every insert for nothing.
    line_item = models.ForeignKey(
        LineItem,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="usage_records",
        db_index=False,
    )
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    updated_at = models.DateTimeField(db_default=Now(), editable=False)

    objects: ClassVar[UsageRecordQuerySet] = UsageRecordQuerySet.as_manager()  # type: ignore[assignment]

    class Meta:
        ordering = ["start_time", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "client_id"], name="usage_client_id_unique_per_account"
            ),
            models.CheckConstraint(
                name="usage_end_after_start", condition=Q(end_time__gte=F("start_time"))
            ),
            models.CheckConstraint(
                name="usage_duration_non_negative", condition=Q(duration__gte=0)
            ),
            models.CheckConstraint(
                name="usage_cost_non_negative", condition=Q(cost__isnull=True) | Q(cost__gte=0)
            ),
            models.CheckConstraint(
                name="usage_cost_or_metric",
                condition=Q(cost__isnull=False, metric__isnull=True, quantity__isnull=True)
                | Q(cost__isnull=True, metric__isnull=False, quantity__isnull=False),
            ),
            models.CheckConstraint(
                name="usage_quantity_non_negative",
                condition=Q(quantity__isnull=True) | Q(quantity__gte=0),
            ),
        ]
        indexes = [
            # One account's month is the hot read (reports, billing runs): the
            # included columns let PostgreSQL total and group it from the index
            # alone, without visiting the table rows.
            models.Index(
                fields=["account", "start_time"],
                include=["service", "region", "cost", "duration"],
                name="usage_account_start_cov_idx",
            ),
            models.Index(
                fields=["line_item"],
                condition=Q(line_item__isnull=False),
                name="usage_line_item_billed_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.client_id} {self.service}/{self.region}"
