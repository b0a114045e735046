"""/v1 usage endpoints."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from usage.api.v1.pricing_views import (
    MetricViewSet,
    PlanViewSet,
    SubscriptionViewSet,
    UpcomingInvoiceView,
)
from usage.api.v1.views import UsageIngestView, UsageReportView

# No trailing slash, as the rest of /v1.
router = SimpleRouter(trailing_slash=False)
router.register("metrics", MetricViewSet, basename="v1-metric")
router.register("plans", PlanViewSet, basename="v1-plan")
router.register("subscriptions", SubscriptionViewSet, basename="v1-subscription")

urlpatterns = [
    path("usage", UsageIngestView.as_view(), name="v1-usage"),
    path("usage/report", UsageReportView.as_view(), name="v1-usage-report"),
    path(
        "customers/<int:pk>/upcoming_invoice",
        UpcomingInvoiceView.as_view(),
        name="v1-upcoming-invoice",
    ),
    *router.urls,
]
