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
        assert self.request is not None  # the admin's login view passes its request
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


# The index and the sidebar, as finance reads them: the money first, then the
# customers, then the rest; tables only the software reads in a section of their own
# (hidden from the Finance group by permissions, see accounts migration 0003).
FIRST_MODELS = ("invoices.invoice", "invoices.creditnote", "accounts.account", "accounts.plan")
TECHNICAL_MODELS = frozenset(
    {"accounts.idempotencykey", "invoices.invoicecounter", "invoices.invoiceevent"}
)


def _model_key(app: dict, model: dict) -> str:
    return f"{app['app_label']}.{model['object_name'].lower()}"


def _rank(key: str) -> tuple[int, int]:
    return (0, FIRST_MODELS.index(key)) if key in FIRST_MODELS else (1, 0)


def finance_app_list(app_list: list[dict]) -> list[dict]:
    """Apps that hold a first model come first, each with that model on top; the
    technical tables move to a last "Technical" section."""
    technical: list[dict] = []
    apps = []
    for app in app_list:
        models: list[dict] = []
        for model in app["models"]:
            key = _model_key(app, model)
            (technical if key in TECHNICAL_MODELS else models).append(model)
        if models:
            models.sort(key=lambda model: _rank(_model_key(app, model)))
            apps.append({**app, "models": models})
    apps.sort(key=lambda app: min(_rank(_model_key(app, m)) for m in app["models"]))
    if technical:
        apps.append(
            {
                "name": "Technical",
                "app_label": "technical",
                "app_url": "",
                "has_module_perms": True,
                "models": technical,
            }
        )
    return apps


class StaffAdminSite(AdminSite):
    login_form = ThrottledLoginForm
    site_header = "Billing back office"
    site_title = "Billing"
    index_title = "Finance workspace"

    def get_app_list(self, request, app_label=None):
        app_list = super().get_app_list(request, app_label)
        return app_list if app_label else finance_app_list(app_list)

    def login(self, request, extra_context=None):
        response = super().login(request, extra_context)
        form = (getattr(response, "context_data", None) or {}).get("form")
        if form is not None and form.has_error(NON_FIELD_ERRORS, code="throttled"):
            response.status_code = 429
            [error] = [e for e in form.errors.as_data()[NON_FIELD_ERRORS] if e.code == "throttled"]
            response["Retry-After"] = str(error.params["retry_after"])
        return response
