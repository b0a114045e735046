"""Usage records reported by clients, billed by the monthly billing run."""

from __future__ import annotations

import datetime as dt
from typing import ClassVar

from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Now

from accounts.models import Account
from billing.lib.months import month_bounds
from invoices.models import LineItem


class UsageRecordQuerySet(models.QuerySet["UsageRecord"]):
    def of_month(self, month: dt.date) -> UsageRecordQuerySet:
        """Records that started in `month` (UTC): the records its invoice bills."""
        start, end = month_bounds(month)
        return self.filter(start_time__gte=start, start_time__lt=end)

    def unbilled(self, month: dt.date) -> UsageRecordQuerySet:
        """Records of `month` that no invoice line bills yet: what a billing run picks up."""
        return self.of_month(month).filter(line_item__isnull=True)


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
    cost = models.DecimalField(max_digits=18, decimal_places=6)
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
            models.CheckConstraint(name="usage_cost_non_negative", condition=Q(cost__gte=0)),
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
