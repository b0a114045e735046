"""System checks for settings that would run but quietly do the wrong thing.

The deployment checks (`manage.py check --deploy`) refuse what is fine on a laptop
and unsafe in production (DEBUG off): tasks run inline in the web process because
no broker is set, and the SQLite file database. The others hold everywhere.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

from billing.lib.money import CURRENCIES

MAX_PAYMENT_TERMS_DAYS = 365  # the account field's own limit


@register(Tags.compatibility, deploy=True)
def check_task_broker(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    if settings.DEBUG or not getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False):
        return []
    return [
        Error(
            "Celery tasks run inline in the web process: CELERY_BROKER_URL is not set.",
            hint=(
                "Set CELERY_BROKER_URL (e.g. redis://host:6379/0) and run a worker and beat; "
                "PDF rendering and the monthly jobs must not run inside requests."
            ),
            id="billing.E001",
        )
    ]


@register(Tags.database, deploy=True)
def check_production_database(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    if settings.DEBUG:
        return []
    engines = {db["ENGINE"] for db in settings.DATABASES.values()}
    if "django.db.backends.sqlite3" not in engines:
        return []
    return [
        Warning(
            "The database is SQLite while DEBUG is off.",
            hint=(
                "Set DATABASE_URL to PostgreSQL: SQLite has no row locks and serialises "
                "every write, so gunicorn workers and the Celery worker wait on each other."
            ),
            id="billing.W002",
        )
    ]


@register()
def check_billing_defaults(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    errors = []
    currency = settings.DEFAULT_CURRENCY
    if currency not in CURRENCIES:
        errors.append(
            Error(
                f"DEFAULT_CURRENCY {currency!r} is not a supported currency.",
                hint="Use an ISO 4217 code such as USD or EUR; new accounts take it.",
                id="billing.E003",
            )
        )
    terms = settings.DEFAULT_PAYMENT_TERMS_DAYS
    if not 0 <= terms <= MAX_PAYMENT_TERMS_DAYS:
        errors.append(
            Error(
                f"DEFAULT_PAYMENT_TERMS_DAYS is {terms}; it must be 0 to "
                f"{MAX_PAYMENT_TERMS_DAYS}, as an account's own terms.",
                id="billing.E004",
            )
        )
    return errors


@register(Tags.security)
def check_api_denies_by_default(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    rest = getattr(settings, "REST_FRAMEWORK", {})
    permissions = rest.get("DEFAULT_PERMISSION_CLASSES", [])
    if permissions and "rest_framework.permissions.AllowAny" not in permissions:
        return []
    return [
        Error(
            "REST_FRAMEWORK's DEFAULT_PERMISSION_CLASSES lets everyone in: "
            "an API view that forgets its permissions would be public.",
            hint="Keep a default that refuses, such as rest_framework.permissions.IsAuthenticated.",
            id="billing.E005",
        )
    ]
