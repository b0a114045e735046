"""Permissions of API keys: a valid key to read, the write scope to change anything."""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission

from accounts.models import ApiKey


def request_api_key(request) -> ApiKey | None:
    return request.auth if isinstance(request.auth, ApiKey) else None


class HasApiKey(BasePermission):
    message = "Access denied"

    def has_permission(self, request, view) -> bool:
        return request_api_key(request) is not None


class WriteScopeForUnsafe(BasePermission):
    """Read keys may only use safe methods."""

    message = "Your access token does not have the correct permissions"

    def has_permission(self, request, view) -> bool:
        key = request_api_key(request)
        if key is None:
            return False
        return request.method in SAFE_METHODS or key.can_write


class ProviderWideKey(BasePermission):
    """Endpoints about accounts themselves (signup, list) need a key not limited to one account."""

    message = "Your access token does not have the correct permissions"

    def has_permission(self, request, view) -> bool:
        key = request_api_key(request)
        return key is not None and key.account_id is None
