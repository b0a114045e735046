from django.contrib import admin

from usage.models import UsageRecord


@admin.register(UsageRecord)
class UsageRecordAdmin(admin.ModelAdmin):
    list_display = ("client_id", "account", "service", "region", "start_time", "cost", "line_item")
    list_filter = ("service", "region")
    raw_id_fields = ("account", "line_item")
    show_full_result_count = False
