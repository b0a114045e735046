"""The OpenAPI schema of both APIs and its two readers, served from local static files.

Swagger UI and ReDoc come from drf-spectacular-sidecar, so the pages work
offline; ReDoc's stock template loads web fonts from Google, so a local
template replaces its head.
"""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

import billing.api.openapi  # noqa: F401  (registers the authentication schemes)

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path(
        "redoc/",
        SpectacularRedocView.as_view(url_name="schema", template_name="docs/redoc.html"),
        name="redoc",
    ),
]
