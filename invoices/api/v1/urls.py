"""The JSON API under /v1: invoices and credit notes."""

from rest_framework.routers import SimpleRouter

from invoices.api.v1.views import CreditNoteViewSet, InvoiceViewSet

# No trailing slash: the seed's paths are /invoices and /invoices/{id}.
router = SimpleRouter(trailing_slash=False)
router.register("invoices", InvoiceViewSet, basename="v1-invoice")
router.register("credit_notes", CreditNoteViewSet, basename="v1-credit-note")

urlpatterns = router.urls
