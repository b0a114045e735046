from django.apps import AppConfig


class InvoicesConfig(AppConfig):
    name = "invoices"
    verbose_name = "Invoices"

    def ready(self) -> None:
        # Connects the receiver that renders an issued invoice's PDF after commit.
        from invoices import tasks  # noqa: F401
