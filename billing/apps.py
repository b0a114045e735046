from django.apps import AppConfig


class BillingConfig(AppConfig):
    """The project itself: its system checks of the settings."""

    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        from billing import checks  # noqa: F401  (registers the checks)
