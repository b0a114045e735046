"""The JSON API under /v1: invoices and credit notes."""

from rest_framework.routers import SimpleRouter

from invoices.api import fast_reads
from invoices.api.v1.views import CreditNoteViewSet, InvoiceViewSet

# No trailing slash: the seed's paths are /invoices and /invoices/{id}.
router = SimpleRouter(trailing_slash=False)
router.register("invoices", InvoiceViewSet, basename="v1-invoice")
router.register("credit_notes", CreditNoteViewSet, basename="v1-credit-note")

# The invoice reads try invoices.api.fast_reads first.
urlpatterns = fast_reads.wrap_patterns(
    router.urls,
    {"v1-invoice-list": fast_reads.v1_invoice_list, "v1-invoice-detail": fast_reads.v1_invoice},
)
