"""Usage records: read-only here (they come from the API and imports, and the billing run links them)."""

from django.contrib import admin

from billing.lib.paging import EstimatedCountPaginator
from usage.models import UsageRecord


@admin.register(UsageRecord)
class UsageRecordAdmin(admin.ModelAdmin):
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
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = EstimatedCountPaginator

    def lookup_allowed(self, lookup, value, request=None):
        # The account page links here filtered by account.
        return lookup == "account__id__exact" or super().lookup_allowed(lookup, value, request)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
