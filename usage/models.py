"""Usage records reported by clients, billed by the monthly billing run."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Now

from accounts.models import Account
from invoices.models import LineItem


class UsageRecord(models.Model):
    """One metered use of a resource; `client_id` is the client's de-duplication key."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="usage_records")
    client_id = models.CharField(max_length=128)
    resource_id = models.CharField(max_length=255)
    resource_name = models.CharField(max_length=255, blank=True)
    service = models.CharField(max_length=128)
    region = models.CharField(max_length=64)
    start_time = models.DateTimeField()
    end_time = models.DateTimeField()
    duration = models.BigIntegerField(help_text="Seconds.")
    cost = models.DecimalField(max_digits=18, decimal_places=6)
    line_item = models.ForeignKey(
        LineItem, null=True, blank=True, on_delete=models.SET_NULL, related_name="usage_records"
    )
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    updated_at = models.DateTimeField(db_default=Now(), editable=False)

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
            models.Index(fields=["account", "start_time"], name="usage_account_start_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.client_id} {self.service}/{self.region}"
