"""The project's system checks: each unsafe setting is reported, safe ones are not."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from billing import checks

POSTGRES = {"default": {"ENGINE": "django.db.backends.postgresql", "NAME": "billing"}}
SQLITE = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3"}}
# The checks only read DATABASES; no connection is opened with these.
pytestmark = pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")


def _ids(messages) -> list[str]:
    return [message.id for message in messages]


@override_settings(DEBUG=False, CELERY_TASK_ALWAYS_EAGER=True)
def test_inline_tasks_without_debug_are_an_error():
    assert _ids(checks.check_task_broker()) == ["billing.E001"]


@pytest.mark.parametrize(("debug", "eager"), [(True, True), (False, False), (True, False)])
def test_inline_tasks_are_fine_in_development_or_with_a_broker(debug, eager):
    with override_settings(DEBUG=debug, CELERY_TASK_ALWAYS_EAGER=eager):
        assert checks.check_task_broker() == []


@override_settings(DEBUG=False, DATABASES=SQLITE)
def test_sqlite_without_debug_is_a_warning():
    assert _ids(checks.check_production_database()) == ["billing.W002"]


@pytest.mark.parametrize(("debug", "databases"), [(True, SQLITE), (False, POSTGRES)])
def test_sqlite_in_development_or_postgres_is_fine(debug, databases):
    with override_settings(DEBUG=debug, DATABASES=databases):
        assert checks.check_production_database() == []


@override_settings(DEFAULT_CURRENCY="XXX")
def test_unknown_default_currency_is_an_error():
    assert _ids(checks.check_billing_defaults()) == ["billing.E003"]


@pytest.mark.parametrize("terms", [-1, 366])
def test_default_terms_outside_an_accounts_range_are_an_error(terms):
    with override_settings(DEFAULT_PAYMENT_TERMS_DAYS=terms):
        assert _ids(checks.check_billing_defaults()) == ["billing.E004"]


def test_shipped_defaults_pass():
    assert checks.check_billing_defaults() == []
    assert checks.check_api_denies_by_default() == []


@pytest.mark.parametrize("permissions", [[], ["rest_framework.permissions.AllowAny"]])
def test_an_api_default_that_lets_everyone_in_is_an_error(permissions, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_PERMISSION_CLASSES": permissions}
    assert _ids(checks.check_api_denies_by_default()) == ["billing.E005"]


@override_settings(DEBUG=False, CELERY_TASK_ALWAYS_EAGER=True)
def test_check_deploy_fails_on_inline_tasks():
    with pytest.raises(SystemCheckError, match="billing.E001"):
        call_command("check", "--deploy", "--fail-level", "ERROR")
