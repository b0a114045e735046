"""The JSON API under /v1: invoices."""

from rest_framework.routers import SimpleRouter

from invoices.api.v1.views import InvoiceViewSet

# No trailing slash: the seed's paths are /invoices and /invoices/{id}.
router = SimpleRouter(trailing_slash=False)
router.register("invoices", InvoiceViewSet, basename="v1-invoice")

urlpatterns = router.urls
