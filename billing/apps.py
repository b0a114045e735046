"""The project's app configs: its system checks, and the admin with the back office's site."""

from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class BillingConfig(AppConfig):
    """The project itself: its system checks of the settings."""

    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        from billing import checks  # noqa: F401  (registers the checks)


class StaffAdminConfig(AdminConfig):
    """Django's admin app, with the back office's site (billing.admin_site) as `admin.site`."""

    default_site = "billing.admin_site.StaffAdminSite"
