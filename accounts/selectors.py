"""Reads of accounts and API keys."""

from __future__ import annotations

import hmac
import re
from decimal import Decimal

from django.db.models import QuerySet, Sum

from accounts.models import Account, AccountCreditEntry, ApiKey

_KEY_RE = re.compile(r"^bk_([0-9a-f]{8})_[A-Za-z0-9_-]{20,100}$")


def api_key_get_by_secret(raw_key: str | None) -> ApiKey | None:
    """The key matching `raw_key`, whatever its state (callers check `is_usable`)."""
    if not raw_key:
        return None
    match = _KEY_RE.match(raw_key.strip())
    if match is None:
        return None
    try:
        # get(), not first(): the prefix is unique, and first() would add an ORDER BY.
        key = ApiKey.objects.select_related("account").get(prefix=match.group(1))
    except ApiKey.DoesNotExist:
        return None
    if not hmac.compare_digest(key.key_hash, ApiKey.hash_secret(raw_key.strip())):
        return None
    return key


def account_list(*, include_deleted: bool = False) -> QuerySet[Account]:
    qs = Account.objects.all()
    return qs if include_deleted else qs.alive()


def account_visible_to(api_key: ApiKey | None) -> QuerySet[Account]:
    qs = Account.objects.alive()
    if api_key is not None and api_key.account_id is not None:
        qs = qs.filter(pk=api_key.account_id)
    return qs


def account_credit_balance(account: Account | int, currency: str) -> Decimal:
    """The account's credit balance in `currency` (the sum of its credit entries)."""
    account_id = account if isinstance(account, int) else account.pk
    total = AccountCreditEntry.objects.filter(account_id=account_id, currency=currency).aggregate(
        total=Sum("amount")
    )["total"]
    if total is None:
        return Decimal("0")
    return total if isinstance(total, Decimal) else Decimal(str(total))


def account_credit_balances(account: Account) -> dict[str, Decimal]:
    """Every non-zero balance of the account, by currency."""
    rows = (
        AccountCreditEntry.objects.filter(account=account)
        .values("currency")
        .annotate(total=Sum("amount"))
        .order_by("currency")
    )
    balances = {}
    for row in rows:
        total = row["total"]
        total = total if isinstance(total, Decimal) else Decimal(str(total))
        if total:
            balances[row["currency"]] = total
    return balances


def account_find_by_email(api_key: ApiKey | None, email: str) -> Account | None:
    """The visible account whose billing e-mail is `email` (any case); the oldest if several."""
    if not email:
        return None
    return account_visible_to(api_key).filter(billing_email__iexact=email).order_by("id").first()
