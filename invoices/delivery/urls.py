"""`/i/<token>`: the hosted invoice and credit-note pages (included by billing.urls under `i/`)."""

from django.urls import path

from invoices.delivery import views

urlpatterns = [
    path("<str:token>", views.hosted_invoice, name="hosted-invoice"),
    path("<str:token>/pdf", views.hosted_invoice_pdf, name="hosted-invoice-pdf"),
    path("<str:token>/einvoice/<str:syntax>", views.hosted_einvoice, name="hosted-einvoice"),
    path("<str:token>/pay", views.hosted_invoice_pay, name="hosted-invoice-pay"),
]
