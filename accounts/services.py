"""Writes to accounts, the seller profile and API keys."""

from __future__ import annotations

import datetime as dt
import secrets

from django.db import transaction
from django.utils import timezone

from accounts.models import Account, ApiKey

KEY_PREFIX_BYTES = 4  # 8 hex characters, public, used for lookup
KEY_SECRET_BYTES = 32


@transaction.atomic
def account_create(*, org_name: str, **fields) -> Account:
    account = Account(org_name=org_name, **fields)
    account.full_clean()
    account.save()
    return account


@transaction.atomic
def account_update(*, account: Account, **fields) -> Account:
    account = Account.objects.select_for_update().get(pk=account.pk)
    for name, value in fields.items():
        setattr(account, name, value)
    account.full_clean()
    account.save()
    return account


@transaction.atomic
def account_soft_delete(*, account: Account, now: dt.datetime | None = None) -> Account:
    """Mark the account deleted. Its invoices, payments and usage stay; its API keys stop working."""
    now = now or timezone.now()
    account = Account.objects.select_for_update().get(pk=account.pk)
    if account.is_deleted:
        return account
    account.state = Account.State.DELETED
    account.deleted_at = now
    account.save(update_fields=["state", "deleted_at", "updated_at"])
    account.api_keys.filter(revoked_at__isnull=True).update(revoked_at=now)
    return account


def api_key_create(
    *,
    name: str,
    scope: str = ApiKey.Scope.READ,
    account: Account | None = None,
    expires_at: dt.datetime | None = None,
    created_by=None,
) -> tuple[ApiKey, str]:
    """Create a key and return it with its secret, which is shown once and never stored."""
    while True:
        prefix = secrets.token_hex(KEY_PREFIX_BYTES)
        if not ApiKey.objects.filter(prefix=prefix).exists():
            break
    raw = f"bk_{prefix}_{secrets.token_urlsafe(KEY_SECRET_BYTES)}"
    key = ApiKey.objects.create(
        name=name,
        prefix=prefix,
        key_hash=ApiKey.hash_secret(raw),
        scope=scope,
        account=account,
        expires_at=expires_at,
        created_by=created_by,
    )
    return key, raw


def api_key_revoke(*, api_key: ApiKey, now: dt.datetime | None = None) -> ApiKey:
    ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(
        revoked_at=now or timezone.now()
    )
    api_key.refresh_from_db()
    return api_key


LAST_USED_RESOLUTION = dt.timedelta(minutes=5)


def api_key_touch(*, api_key: ApiKey, now: dt.datetime | None = None) -> None:
    """Keep last_used_at roughly current without writing on every request."""
    now = now or timezone.now()
    if api_key.last_used_at is not None and now - api_key.last_used_at < LAST_USED_RESOLUTION:
        return
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    api_key.last_used_at = now
