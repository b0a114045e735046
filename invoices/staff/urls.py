"""Staff pages, under /staff/ (login through the admin)."""

from django.urls import path

from invoices.staff import views

app_name = "staff"

urlpatterns = [
    path("dashboard/", views.dashboard, name="dashboard"),
    path("receivables/", views.ageing, name="ageing"),
]
