"""Django's admin app, with the back office's site (billing.admin_site) as `admin.site`."""

from django.contrib.admin.apps import AdminConfig


class StaffAdminConfig(AdminConfig):
    default_site = "billing.admin_site.StaffAdminSite"
