"""Idempotency-Key for /v1 POSTs, with Stripe's semantics.

The first completed response to a POST carrying `Idempotency-Key` is stored
for 24 hours, per API key, with a hash of the request (method, full path,
body). Then, for the same API key and Idempotency-Key:

- the same request gets the stored response again, with `Idempotent-Replayed: true`;
- a different request (another body or path) gets 422 `idempotency_key_reused`;
- a request while the first is still running gets 409 `idempotency_request_in_progress`.

The key is claimed (`accounts.services.idempotency_key_claim`) with an
INSERT committed in its own transaction before the view runs, so a concurrent duplicate sees the claim at once (the unique
constraint on (api_key, key) decides the race). When the view crashes (an
unhandled exception, a 5xx) the claim is deleted so that a retry can run;
every other response, 4xx included, is stored, so a retried charge that was
declined is answered with the same 402 rather than charged again.

Use it by mixing `IdempotencyMixin` into any /v1 view, before the view's base
class (and after nothing that answers before authentication):

    class UsageIngestView(IdempotencyMixin, V1APIMixin, APIView): ...
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.http import HttpResponse
from django.utils import timezone
from rest_framework import status

from accounts.models import ApiKey, IdempotencyKey
from accounts.services import (
    IDEMPOTENCY_KEY_ABANDONED_AFTER,
    IDEMPOTENCY_KEY_TTL,
    idempotency_key_claim,
    idempotency_key_complete,
    idempotency_key_release,
)
from billing.api.errors import ApiError

HEADER = "Idempotency-Key"
REPLAY_HEADER = "Idempotent-Replayed"
TTL = IDEMPOTENCY_KEY_TTL
ABANDONED_AFTER = IDEMPOTENCY_KEY_ABANDONED_AFTER
MAX_KEY_LENGTH = 255
# The header's OpenAPI schema: what the check below accepts (blanks are stripped first).
KEY_SCHEMA = {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH, "pattern": r"\S"}
# Response headers that describe the stored response itself; the rest
# (Vary, Allow, cookies, ...) are set afresh by each response.
_REPLAYED_HEADERS = ("Content-Type", "Location", "Link", "X-Total-Count")


def _complete(claim: IdempotencyKey, response: HttpResponse) -> None:
    headers = {name: response[name] for name in _REPLAYED_HEADERS if response.has_header(name)}
    idempotency_key_complete(
        claim=claim,
        status=response.status_code,
        headers=headers,
        body=bytes(response.content),
        now=timezone.now(),
    )


class _Replay(Exception):
    """Carries a stored response out of `initial()` to `handle_exception()`."""

    def __init__(self, response: HttpResponse) -> None:
        super().__init__("idempotent replay")
        self.response = response


def request_fingerprint(method: str, full_path: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.upper().encode(), full_path.encode(), body):
        # Length-prefix each part so that ("ab", "c") and ("a", "bc") differ.
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def replay_response(stored: IdempotencyKey) -> HttpResponse:
    response = HttpResponse(
        bytes(stored.response_body or b""), status=stored.response_status or status.HTTP_200_OK
    )
    for name, value in (stored.response_headers or {}).items():
        response[name] = value
    response[REPLAY_HEADER] = "true"
    return response


class IdempotencyMixin:
    """Honour `Idempotency-Key` on the methods in `idempotent_methods` (POST)."""

    idempotent_methods: tuple[str, ...] = ("POST",)
    _idempotency_claim: IdempotencyKey | None = None

    def initial(self, request, *args: Any, **kwargs: Any) -> None:
        self._idempotency_claim = None
        super().initial(request, *args, **kwargs)  # type: ignore[misc]  # authentication and permissions first
        if request.method not in self.idempotent_methods:
            return
        key = request.headers.get(HEADER)
        api_key = request.auth if isinstance(request.auth, ApiKey) else None
        if key is None or api_key is None:
            return
        key = key.strip()
        if not key or len(key) > MAX_KEY_LENGTH:
            raise ApiError(
                f"{HEADER} must be 1 to {MAX_KEY_LENGTH} characters.",
                code="validation_error",
                details={HEADER: [f"must be 1 to {MAX_KEY_LENGTH} characters"]},
            )
        full_path = request.get_full_path()
        # Reading the raw body caches it, so the parsers can still read it later.
        fingerprint = request_fingerprint(request.method, full_path, request._request.body)
        claim, existing = idempotency_key_claim(
            api_key=api_key,
            key=key,
            method=request.method,
            path=full_path,
            request_hash=fingerprint,
            now=timezone.now(),
        )
        if claim is not None:
            self._idempotency_claim = claim
            return
        assert existing is not None
        if existing.request_hash != fingerprint:
            raise ApiError(
                f"This {HEADER} was already used with a different request "
                "(method, path or body). Use a new key for a new request.",
                status_code=status.HTTP_422_UNPROCESSABLE_ENTITY,
                code="idempotency_key_reused",
            )
        if existing.status != IdempotencyKey.Status.COMPLETED:
            raise ApiError(
                f"A request with this {HEADER} is still being processed; "
                "retry after it has finished.",
                status_code=status.HTTP_409_CONFLICT,
                code="idempotency_request_in_progress",
            )
        raise _Replay(replay_response(existing))

    def handle_exception(self, exc: Exception):
        if isinstance(exc, _Replay):
            return exc.response
        try:
            return super().handle_exception(exc)  # type: ignore[misc]
        except BaseException:
            # Unhandled: Django will answer 500. Free the key for a retry.
            self._release_idempotency_claim()
            raise

    def finalize_response(self, request, response, *args: Any, **kwargs: Any):
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
        claim = self._idempotency_claim
        if claim is None:
            return response
        self._idempotency_claim = None
        if response.status_code >= 500:
            idempotency_key_release(claim=claim)
            return response
        try:
            if hasattr(response, "render") and not getattr(response, "is_rendered", True):
                response.render()
            _complete(claim, response)
        except BaseException:
            idempotency_key_release(claim=claim)
            raise
        return response

    def _release_idempotency_claim(self) -> None:
        claim, self._idempotency_claim = self._idempotency_claim, None
        if claim is not None:
            idempotency_key_release(claim=claim)
