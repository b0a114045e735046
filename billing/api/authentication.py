"""API-key authentication for both APIs.

`/api` (3scale) takes the key as `access_token` or `provider_key` (query or
body), HTTP Basic (user or password) or `Authorization: Bearer`, and answers
every failure with 403, as 3scale does. `/v1` takes only `Authorization:
Bearer` and answers failures with 401 and a `WWW-Authenticate` challenge.
"""

from __future__ import annotations

import base64
import binascii

from django.utils import timezone
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed

from accounts.models import ApiKey
from accounts.selectors import api_key_get_by_secret
from accounts.services import api_key_touch


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


def _check(raw: str, message: str) -> tuple[ApiKeyPrincipal, ApiKey]:
    key = api_key_get_by_secret(raw)
    now = timezone.now()
    if key is None or not key.is_usable(now):
        raise AuthenticationFailed(message)
    api_key_touch(api_key=key, now=now)
    return ApiKeyPrincipal(key), key


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
        for name in ("access_token", "provider_key"):
            value = request.query_params.get(name)
            if value:
                return value
        # Only form bodies are looked at here: reading a JSON body before the
        # view would turn a malformed body into an authentication error.
        post = getattr(request._request, "POST", None)
        content_type = request.content_type or ""
        if post is not None and content_type.startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            for name in ("access_token", "provider_key"):
                value = request._request.POST.get(name)
                if value:
                    return value
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if header[:6].lower() == "basic ":
            return _basic_credentials(header)
        if header[:7].lower() == "bearer ":
            return _bearer_token(header)
        return None

    def authenticate_header(self, request):
        return None  # no challenge: 3scale answers 403, never 401


class BearerKeyAuthentication(BaseAuthentication):
    """`Authorization: Bearer <key>`; failures are 401 with a Bearer challenge."""

    message = "Invalid, expired or revoked API key."

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        raw = _bearer_token(header)
        if raw is None:
            raise AuthenticationFailed("Use the Authorization: Bearer <key> header.")
        return _check(raw, self.message)

    def authenticate_header(self, request):
        return 'Bearer realm="billing"'
