from django.apps import AppConfig


class InvoicesConfig(AppConfig):
    name = "invoices"
    verbose_name = "Invoices"

    def ready(self) -> None:
        # Connects the receiver that renders an issued invoice's PDF after commit.
        # Connects the receivers that keep stored representations in step with
        # the accounts and the seller profile they show.
        from invoices import (
            representations,  # noqa: F401
            tasks,  # noqa: F401
        )
