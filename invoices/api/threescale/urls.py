"""The 3scale-compatible Billing API under /api: 3scale's paths, parameters and bodies.

The invoice reads try invoices.api.fast_reads first. Every route takes an optional format suffix (`.xml`, `.json`; anything else is
406); without one, `Accept` decides, XML by default.
"""

from django.urls import path
from rest_framework.urlpatterns import format_suffix_patterns

from billing.api.threescale import converters  # noqa: F401  (registers threescale_id)
from invoices.api import fast_reads
from invoices.api.threescale.views import (
    AccountInvoiceViewSet,
    InvoicePdfViewSet,
    InvoiceViewSet,
    LineItemViewSet,
    PaymentTransactionViewSet,
    invoice_pdf_download,
)

_routes = [
    path(
        "invoices",
        fast_reads.answered_first(fast_reads.threescale_invoice_list)(
            InvoiceViewSet.as_view({"get": "list", "post": "create"})
        ),
        name="threescale-invoice-list",
    ),
    path(
        "invoices/<threescale_id:pk>",
        fast_reads.answered_first(fast_reads.threescale_invoice)(
            InvoiceViewSet.as_view({"get": "retrieve", "put": "update", "patch": "partial_update"})
        ),
        name="threescale-invoice-detail",
    ),
    path(
        "invoices/<threescale_id:pk>/state",
        InvoiceViewSet.as_view({"put": "state"}),
        name="threescale-invoice-state",
    ),
    path(
        "invoices/<threescale_id:pk>/charge",
        InvoiceViewSet.as_view({"post": "charge"}),
        name="threescale-invoice-charge",
    ),
    path(
        "invoices/<threescale_id:invoice_id>/line_items",
        LineItemViewSet.as_view({"get": "list", "post": "create"}),
        name="threescale-line-item-list",
    ),
    path(
        "invoices/<threescale_id:invoice_id>/line_items/<threescale_id:pk>",
        LineItemViewSet.as_view({"delete": "destroy"}),
        name="threescale-line-item-detail",
    ),
    path(
        "invoices/<threescale_id:invoice_id>/payment_transactions",
        PaymentTransactionViewSet.as_view({"get": "list"}),
        name="threescale-payment-transaction-list",
    ),
    path(
        "accounts/<threescale_id:account_id>/invoices",
        fast_reads.answered_first(fast_reads.threescale_invoice_list)(
            AccountInvoiceViewSet.as_view({"get": "list"})
        ),
        name="threescale-account-invoice-list",
    ),
    path(
        "accounts/<threescale_id:account_id>/invoices/<threescale_id:pk>",
        fast_reads.answered_first(fast_reads.threescale_invoice)(
            AccountInvoiceViewSet.as_view({"get": "retrieve"})
        ),
        name="threescale-account-invoice-detail",
    ),
]

urlpatterns = [
    # Before the suffixed routes, which would otherwise read `.pdf` as an unknown format.
    path(
        "invoices/<threescale_id:pk>.pdf",
        InvoicePdfViewSet.as_view({"get": "retrieve"}),
        name="threescale-invoice-pdf",
    ),
    path(
        "invoice_pdfs/<str:token>",
        invoice_pdf_download,
        name="threescale-invoice-pdf-download",
    ),
    *format_suffix_patterns(_routes),
]
