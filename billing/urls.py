"""URL map: the admin, the 3scale-compatible /api, the JSON /v1, staff pages and the docs."""

from django.contrib import admin
from django.urls import include, path

from billing.views import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/api/", include("accounts.api.urls_3scale")),
    path("admin/", admin.site.urls),
    path("staff/", include("invoices.staff.urls")),
    path("api/", include("billing.urls_docs")),
    path("api/", include("invoices.api.urls_3scale")),
    path("v1/", include("invoices.api.urls_v1")),
    path("v1/", include("usage.api.urls")),
]
