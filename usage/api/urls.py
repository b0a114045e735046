"""/v1 usage endpoints."""

from django.urls import path

from usage.api.views import UsageIngestView, UsageReportView

urlpatterns = [
    path("usage", UsageIngestView.as_view(), name="v1-usage"),
    path("usage/report", UsageReportView.as_view(), name="v1-usage-report"),
]
