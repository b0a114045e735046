"""Usage records: read-only here (they come from the API and imports, and the billing run links them)."""

from django.contrib import admin

from billing.lib.admin import ReadOnlyAdmin
from usage.models import UsageRecord


@admin.register(UsageRecord)
class UsageRecordAdmin(ReadOnlyAdmin):
    list_display = (
        "client_id",
        "account",
        "service",
        "region",
        "resource_id",
        "start_time",
        "duration",
        "cost",
        "line_item",
    )
    list_filter = ("service", "region")
    list_select_related = ("account", "line_item")
    search_fields = ("=client_id", "=resource_id")
    raw_id_fields = ("account", "line_item")

    def lookup_allowed(self, lookup, value, request=None):
        # The account page links here filtered by account.
        return lookup == "account__id__exact" or super().lookup_allowed(lookup, value, request)
