"""3scale's Account Management API under /admin/api: signup and accounts."""

from django.urls import path
from rest_framework.urlpatterns import format_suffix_patterns

from accounts.api.threescale.views import AccountViewSet
from billing.api.threescale import converters  # noqa: F401  (registers threescale_id)

urlpatterns = format_suffix_patterns(
    [
        path(
            "signup",
            AccountViewSet.as_view({"post": "signup"}),
            name="threescale-signup",
        ),
        path(
            "accounts",
            AccountViewSet.as_view({"get": "list"}),
            name="threescale-account-list",
        ),
        # Before the detail route, whose id segment would take `find`.
        path(
            "accounts/find",
            AccountViewSet.as_view({"get": "find"}),
            name="threescale-account-find",
        ),
        path(
            "accounts/<threescale_id:pk>",
            AccountViewSet.as_view(
                {
                    "get": "retrieve",
                    "put": "update",
                    "patch": "partial_update",
                    "delete": "destroy",
                }
            ),
            name="threescale-account-detail",
        ),
    ]
)
