"""The back office's admin site: Django's own, with failed sign-ins throttled.

INSTALLED_APPS names `billing.apps.StaffAdminConfig` instead of
`django.contrib.admin`, so `admin.site` (and every `@admin.register`) is a
`StaffAdminSite`. Too many failed sign-ins for a username or from an address
get a 429 with a message saying when to try again (billing.lib.login_throttle).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.admin import AdminSite
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from billing.lib.login_throttle import LoginThrottle, client_ip

logger = logging.getLogger("billing.security")


def login_throttle() -> LoginThrottle:
    return LoginThrottle(
        max_failures=settings.ADMIN_LOGIN_MAX_FAILURES,
        window=settings.ADMIN_LOGIN_WINDOW_SECONDS,
        lockout=settings.ADMIN_LOGIN_LOCKOUT_SECONDS,
    )


class ThrottledLoginForm(AdminAuthenticationForm):
    """Refuses without checking the password while the username or address is locked out."""

    def clean(self):
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if not username or not password:
            return super().clean()  # the field errors say what is missing
        throttle = login_throttle()
        ip = client_ip(self.request, settings.TRUSTED_PROXIES)
        try:
            wait = throttle.retry_after(username, ip)
        except Exception:
            # A cache outage must not lock staff out (nor answer 500): sign-in goes on
            # unthrottled, and says so in the log.
            logger.exception("admin sign-in throttle unavailable; signing in unthrottled")
            return super().clean()
        if wait:
            minutes = -(-wait // 60)
            raise ValidationError(
                "Too many failed sign-in attempts for this username or from this address. "
                f"Try again in {minutes} minute{'' if minutes == 1 else 's'}.",
                code="throttled",
                params={"retry_after": wait},
            )
        try:
            cleaned = super().clean()
        except ValidationError:
            if self._record_failure(throttle, username, ip):
                logger.warning(
                    "admin sign-in locked out after %s failures (username %r, address %s)",
                    throttle.max_failures,
                    username,
                    ip,
                )
            raise
        try:
            throttle.record_success(username)
        except Exception:
            logger.exception("admin sign-in throttle unavailable")
        return cleaned

    @staticmethod
    def _record_failure(throttle: LoginThrottle, username: str, ip: str) -> bool:
        try:
            return throttle.record_failure(username, ip)
        except Exception:
            logger.exception("admin sign-in throttle unavailable; failure not counted")
            return False


class StaffAdminSite(AdminSite):
    login_form = ThrottledLoginForm

    def login(self, request, extra_context=None):
        response = super().login(request, extra_context)
        form = (getattr(response, "context_data", None) or {}).get("form")
        if form is not None and form.has_error(NON_FIELD_ERRORS, code="throttled"):
            response.status_code = 429
            [error] = [e for e in form.errors.as_data()[NON_FIELD_ERRORS] if e.code == "throttled"]
            response["Retry-After"] = str(error.params["retry_after"])
        return response
