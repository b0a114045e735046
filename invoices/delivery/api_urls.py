"""`/v1/webhook_endpoints` (included by billing.urls under `v1/`)."""

from rest_framework.routers import SimpleRouter

from invoices.delivery.api import WebhookEndpointViewSet

router = SimpleRouter(trailing_slash=False)
router.register("webhook_endpoints", WebhookEndpointViewSet, basename="v1-webhook-endpoint")

urlpatterns = router.urls
