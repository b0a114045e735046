"""URL map: the admin, the 3scale-compatible /api, the JSON /v1, staff pages and the docs."""

from django.contrib import admin
from django.http import Http404
from django.urls import include, path, re_path

from billing.views import healthz, home


def _no_such_api_path(request, rest=""):
    # Without this the admin's catch-all would redirect to its login page.
    raise Http404("No such API path")


urlpatterns = [
    path("", home, name="home"),
    path("healthz", healthz, name="healthz"),
    path("admin/api/", include("accounts.api.threescale.urls")),
    re_path(r"^admin/api/(?P<rest>.*)$", _no_such_api_path),
    path("admin/", admin.site.urls),
    path("staff/", include("invoices.staff.urls")),
    path("api/", include("billing.urls_docs")),
    path("api/", include("invoices.api.threescale.urls")),
    path("v1/", include("invoices.api.v1.urls")),
    path("v1/", include("usage.api.v1.urls")),
]

# Errors Django answers itself (no route, refused host, crash): in the API's
# format on the API paths, Django's pages elsewhere.
handler400 = "billing.api.errors.bad_request"
handler403 = "billing.api.errors.permission_denied"
handler404 = "billing.api.errors.page_not_found"
handler500 = "billing.api.errors.server_error"
