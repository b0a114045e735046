"""Create an API key and print its secret once."""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.models import Account, ApiKey
from accounts.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key (read or write, optionally limited to one account) and print it once."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--name", required=True, help="What the key is for.")
        parser.add_argument("--scope", choices=["read", "write"], default="read")
        parser.add_argument("--account", type=int, help="Limit the key to this account id.")
        parser.add_argument("--expires-in-days", type=int, help="Expire the key after N days.")

    def handle(self, *args, **options) -> None:
        account = None
        if options["account"] is not None:
            try:
                account = Account.objects.alive().get(pk=options["account"])
            except Account.DoesNotExist:
                raise CommandError(f"No active account with id {options['account']}.") from None
        expires_at = None
        if options["expires_in_days"] is not None:
            if options["expires_in_days"] < 1:
                raise CommandError("--expires-in-days must be at least 1.")
            expires_at = timezone.now() + dt.timedelta(days=options["expires_in_days"])
        key, raw = api_key_create(
            name=options["name"],
            scope=ApiKey.Scope(options["scope"]),
            account=account,
            expires_at=expires_at,
        )
        self.stdout.write(
            f"Created {key.scope} key {key.prefix} ({key.name}). Store it now; it is not shown again:"
        )
        self.stdout.write(raw)
