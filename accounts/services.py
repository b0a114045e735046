"""Writes to accounts, the seller profile and API keys."""

from __future__ import annotations

import datetime as dt
import secrets
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Account, AccountCreditEntry, ApiKey, IdempotencyKey
from accounts.selectors import account_credit_balance
from accounts.signals import api_keys_changed

KEY_PREFIX_BYTES = 4  # 8 hex characters, public, used for lookup
KEY_SECRET_BYTES = 32
# How long a stored /v1 response is replayed for the same Idempotency-Key.
IDEMPOTENCY_KEY_TTL = dt.timedelta(hours=24)
# A claim still "in flight" after this long belongs to a process that died
# mid-request (no request here runs for minutes); a retry may take it over
# instead of being refused until the claim expires a day later.
IDEMPOTENCY_KEY_ABANDONED_AFTER = dt.timedelta(minutes=10)


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
    _api_keys_changed()
    return account


def _api_keys_changed() -> None:
    """Tell the API's verified-key cache, now and again once the change is committed
    (a request in another thread could cache the old row in between)."""
    api_keys_changed.send(sender=ApiKey)
    transaction.on_commit(lambda: api_keys_changed.send(sender=ApiKey))


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
    _api_keys_changed()
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


# --- idempotency keys of /v1 POSTs (billing.api.idempotency) --------------------


def idempotency_key_claim(
    *, api_key: ApiKey, key: str, method: str, path: str, request_hash: str, now: dt.datetime
) -> tuple[IdempotencyKey | None, IdempotencyKey | None]:
    """Claim `key` for this request: (claim, None), or (None, the existing row).

    The INSERT is committed before this returns (unless the caller is itself
    inside a transaction, as tests are), so a concurrent duplicate sees it.
    """
    for _ in range(2):
        try:
            with transaction.atomic():
                claim = IdempotencyKey.objects.create(
                    api_key=api_key,
                    key=key,
                    request_method=method,
                    request_path=path[:2048],
                    request_hash=request_hash,
                    status=IdempotencyKey.Status.IN_FLIGHT,
                    expires_at=now + IDEMPOTENCY_KEY_TTL,
                    created_at=now,
                    updated_at=now,
                )
            return claim, None
        except IntegrityError:
            pass
        existing = IdempotencyKey.objects.filter(api_key=api_key, key=key).first()
        if existing is None:
            continue  # deleted (released or pruned) between our INSERT and SELECT
        if existing.expires_at <= now:
            # An expired key is free again; the conditional delete lets only one
            # of several concurrent retries remove it.
            IdempotencyKey.objects.filter(pk=existing.pk, expires_at__lte=now).delete()
            continue
        if (
            existing.status == IdempotencyKey.Status.IN_FLIGHT
            and existing.request_hash == request_hash
            and existing.updated_at <= now - IDEMPOTENCY_KEY_ABANDONED_AFTER
        ):
            taken = IdempotencyKey.objects.filter(
                pk=existing.pk,
                status=IdempotencyKey.Status.IN_FLIGHT,
                updated_at=existing.updated_at,
            ).update(updated_at=now, expires_at=now + IDEMPOTENCY_KEY_TTL)
            if taken == 1:
                existing.updated_at = now
                return existing, None
            existing.refresh_from_db()
        return None, existing
    # Two rounds of losing races against deletes: treat it as in flight.
    return None, IdempotencyKey(status=IdempotencyKey.Status.IN_FLIGHT, request_hash=request_hash)


def idempotency_key_complete(
    *, claim: IdempotencyKey, status: int, headers: dict[str, str], body: bytes, now: dt.datetime
) -> None:
    """Store the response of a claimed request, for replays during the next TTL."""
    IdempotencyKey.objects.filter(pk=claim.pk).update(
        status=IdempotencyKey.Status.COMPLETED,
        response_status=status,
        response_headers=headers,
        response_body=body,
        expires_at=now + IDEMPOTENCY_KEY_TTL,
        updated_at=now,
    )


def idempotency_key_release(*, claim: IdempotencyKey) -> None:
    IdempotencyKey.objects.filter(pk=claim.pk, status=IdempotencyKey.Status.IN_FLIGHT).delete()


def idempotency_keys_prune(*, now: dt.datetime | None = None, dry_run: bool = False) -> int:
    """Delete stored responses older than their 24 hours; returns how many."""
    expired = IdempotencyKey.objects.filter(expires_at__lte=now or timezone.now())
    if dry_run:
        return expired.count()
    deleted, _ = expired.delete()
    return deleted


def account_credit_add(
    *,
    account: Account,
    amount: Decimal,
    currency: str,
    kind: str,
    invoice_id: int | None = None,
    credit_note_id: int | None = None,
    actor: str = "",
    now: dt.datetime | None = None,
) -> AccountCreditEntry:
    """Add `amount` (> 0) to the account's credit balance in `currency`.

    Callers hold the account's row lock (the first lock of the documented order)
    in their transaction, so balance reads and writes of one account queue.
    """
    if amount <= 0:
        raise ValueError("a credit must be positive")
    return AccountCreditEntry.objects.create(
        account=account,
        amount=amount,
        currency=currency,
        kind=kind,
        invoice_id=invoice_id,
        credit_note_id=credit_note_id,
        actor=actor,
        created_at=now or timezone.now(),
    )


def account_credit_consume(
    *,
    account: Account,
    currency: str,
    up_to: Decimal,
    invoice_id: int,
    actor: str = "",
    now: dt.datetime | None = None,
) -> Decimal:
    """Take up to `up_to` from the account's balance in `currency` for an invoice;
    returns what was taken (0 when there is no balance). The caller holds the
    account's row lock."""
    balance = account_credit_balance(account, currency)
    taken = min(balance, up_to)
    if taken <= 0:
        return Decimal("0")
    AccountCreditEntry.objects.create(
        account=account,
        amount=-taken,
        currency=currency,
        kind=AccountCreditEntry.Kind.APPLIED,
        invoice_id=invoice_id,
        actor=actor,
        created_at=now or timezone.now(),
    )
    return taken
