"""API-key authentication for both APIs.

`/api` (3scale) takes the key as `access_token` or `provider_key` (query or
body), HTTP Basic (user or password) or `Authorization: Bearer`, and answers
every failure with 403, as 3scale does. `/v1` takes only `Authorization:
Bearer` and answers failures with 401 and a `WWW-Authenticate` challenge.

A key verified a moment ago is not read again: each server process keeps the
keys it verified in the last API_KEY_CACHE_SECONDS (default 5; 0 turns the
cache off) in a bounded LRU map (API_KEY_CACHE_SIZE entries), keyed by the
SHA-256 of the presented secret (which is the stored `key_hash` of the key it
matched, so an entry can only ever answer for its own key; the secret itself
is never kept). A wrong secret, even with a valid prefix, is never cached.

- Expiry is exact: the cached `expires_at` and `revoked_at` are checked on
  every request.
- Revocation, deletion, a scope change or the deletion of the key's account
  takes effect at once in the process that made it (the services and model
  saves clear the cache) and within API_KEY_CACHE_SECONDS in every other one.
- `last_used_at` is written at most once per `LAST_USED_RESOLUTION` per key
  and process, as before.
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
from collections import OrderedDict

from django.conf import settings
from django.db.models.base import ModelState
from django.db.models.signals import post_delete, post_save
from django.utils import timezone
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed

from accounts.models import Account, ApiKey
from accounts.selectors import api_key_get_by_secret
from accounts.services import api_key_touch
from accounts.signals import api_keys_changed


class ApiKeyPrincipal:
    """What `request.user` is for a request authenticated by an API key."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False

    def __init__(self, api_key: ApiKey) -> None:
        self.api_key = api_key

    @property
    def actor(self) -> str:
        return f"api_key:{self.api_key.prefix}"

    def __str__(self) -> str:
        return self.actor


def _basic_credentials(header: str) -> str | None:
    try:
        decoded = base64.b64decode(header.split(" ", 1)[1].strip(), validate=True).decode("utf-8")
    except (IndexError, binascii.Error, UnicodeDecodeError):
        return None
    user, _, password = decoded.partition(":")
    return user or password or None


def _bearer_token(header: str) -> str | None:
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def _copy_key(key: ApiKey) -> ApiKey:
    """The key's columns in a new instance with an empty related-object cache (cheaper
    than copy.copy, which also copies the cache)."""
    clone = ApiKey.__new__(ApiKey)
    clone.__dict__.update(key.__dict__)
    state = ModelState()
    state.db = key._state.db
    state.adding = False
    clone._state = state
    return clone


# The clock of the cache's entries (monotonic: a wall-clock step cannot extend them).
_monotonic = time.monotonic


class VerifiedKeyCache:
    """Keys verified in the last few seconds, by the SHA-256 of their secret; bounded LRU.

    Each entry holds a copy of the key's own columns (no related rows), so a
    hit answers with exactly what the database said at most `ttl` seconds ago.
    """

    def __init__(self) -> None:
        self._entries: OrderedDict[str, tuple[float, ApiKey]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, digest: str, *, ttl: float) -> ApiKey | None:
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None:
                return None
            if _monotonic() - entry[0] >= ttl:
                del self._entries[digest]
                return None
            self._entries.move_to_end(digest)
            return entry[1]

    def put(self, digest: str, key: ApiKey, *, max_size: int) -> None:
        # Only a key whose stored hash is the digest: an entry cannot answer for another key.
        if key.key_hash != digest or max_size < 1:
            return
        template = _copy_key(key)  # no related rows: the account is read fresh if used
        with self._lock:
            self._entries[digest] = (_monotonic(), template)
            self._entries.move_to_end(digest)
            while len(self._entries) > max_size:
                self._entries.popitem(last=False)

    def clear(self, **_kwargs) -> None:
        with self._lock:
            self._entries.clear()


verified_keys = VerifiedKeyCache()


def _clear_verified_keys(**_kwargs) -> None:
    verified_keys.clear()


# Every change to a key or an account in this process empties the cache at once;
# other processes see it within API_KEY_CACHE_SECONDS.
api_keys_changed.connect(_clear_verified_keys, dispatch_uid="billing.api.verified_keys")
for _model in (ApiKey, Account):
    post_save.connect(
        _clear_verified_keys, sender=_model, dispatch_uid=f"verified_keys_save_{_model.__name__}"
    )
    post_delete.connect(
        _clear_verified_keys, sender=_model, dispatch_uid=f"verified_keys_delete_{_model.__name__}"
    )


def _verified_key(raw: str) -> ApiKey | None:
    """The key whose secret is `raw`: from the cache if verified a moment ago, else read."""
    ttl = settings.API_KEY_CACHE_SECONDS
    if ttl <= 0:
        return api_key_get_by_secret(raw)
    digest = ApiKey.hash_secret(raw.strip())
    cached = verified_keys.get(digest, ttl=ttl)
    if cached is not None:
        return cached
    key = api_key_get_by_secret(raw)
    if key is not None:
        verified_keys.put(digest, key, max_size=settings.API_KEY_CACHE_SIZE)
        # Answer with the cached copy, so that last_used_at (below) stays current in it.
        return verified_keys.get(digest, ttl=ttl) or key
    return None


def key_for_secret(raw: str) -> ApiKey | None:
    """The usable key whose secret is `raw` (its use noted), or None: the one key check
    of every API request, REST framework's or the stored reads' (invoices.api.fast_reads)."""
    key = _verified_key(raw)
    now = timezone.now()
    if key is None or not key.is_usable(now):
        return None
    # On the shared cached copy, so the next request knows it was just written.
    api_key_touch(api_key=key, now=now)
    return _copy_key(key)  # each request its own instance: views may cache relations on it


def _check(raw: str, message: str) -> tuple[ApiKeyPrincipal, ApiKey]:
    key = key_for_secret(raw)
    if key is None:
        raise AuthenticationFailed(message)
    return ApiKeyPrincipal(key), key


def threescale_credential(query, meta, post=None) -> str | None:
    """The secret of a 3scale request: `access_token` or `provider_key` in the query (or
    in `post`, a form body), else HTTP Basic (user or password), else Bearer."""
    for name in ("access_token", "provider_key"):
        value = query.get(name)
        if value:
            return value
    if post is not None:
        for name in ("access_token", "provider_key"):
            value = post.get(name)
            if value:
                return value
    header = meta.get("HTTP_AUTHORIZATION", "")
    if header[:6].lower() == "basic ":
        return _basic_credentials(header)
    if header[:7].lower() == "bearer ":
        return _bearer_token(header)
    return None


def bearer_credential(meta) -> str | None:
    """The secret of `Authorization: Bearer <key>` (None without one, or another scheme)."""
    header = meta.get("HTTP_AUTHORIZATION", "")
    return _bearer_token(header) if header else None


class ThreeScaleKeyAuthentication(BaseAuthentication):
    """3scale's credentials: access_token / provider_key parameter, Basic, or Bearer."""

    message = "Access denied"

    def authenticate(self, request):
        raw = self._credential(request)
        if raw is None:
            return None
        return _check(raw, self.message)

    @staticmethod
    def _credential(request) -> str | None:
        # Only form bodies are looked at here: reading a JSON body before the
        # view would turn a malformed body into an authentication error.
        query, post = request.query_params, None
        if not (query.get("access_token") or query.get("provider_key")):
            content_type = request.content_type or ""
            if getattr(request._request, "POST", None) is not None and content_type.startswith(
                ("application/x-www-form-urlencoded", "multipart/form-data")
            ):
                post = request._request.POST
        return threescale_credential(query, request._request.META, post)

    def authenticate_header(self, request):
        return None  # no challenge: 3scale answers 403, never 401


class BearerKeyAuthentication(BaseAuthentication):
    """`Authorization: Bearer <key>`; failures are 401 with a Bearer challenge."""

    message = "Invalid, expired or revoked API key."

    def authenticate(self, request):
        if not request._request.META.get("HTTP_AUTHORIZATION", ""):
            return None
        raw = bearer_credential(request._request.META)
        if raw is None:
            raise AuthenticationFailed("Use the Authorization: Bearer <key> header.")
        return _check(raw, self.message)

    def authenticate_header(self, request):
        return 'Bearer realm="billing"'
