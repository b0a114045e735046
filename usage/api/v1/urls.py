"""/v1 usage endpoints."""

from django.urls import path

from usage.api.v1.views import UsageIngestView, UsageReportView

urlpatterns = [
    path("usage", UsageIngestView.as_view(), name="v1-usage"),
    path("usage/report", UsageReportView.as_view(), name="v1-usage-report"),
]
