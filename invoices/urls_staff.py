"""Staff pages, under /staff/ (login through the admin)."""

from django.urls import path

from invoices import views_staff

app_name = "staff"

urlpatterns = [
    path("dashboard/", views_staff.dashboard, name="dashboard"),
]
