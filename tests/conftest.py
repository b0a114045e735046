"""Shared fixtures: named personas, so every API test can check that the other account sees nothing."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

import pytest
from django.db import connection
from hypothesis import settings as hypothesis_settings
from hypothesis.configuration import set_hypothesis_home_dir

from accounts.models import Account, ApiKey
from tests.factories import AccountFactory, make_api_key
from tests.support.artifacts import record_figures

_ran_on: dict[str, int] = {}
_hostile = {"requests": 0, "server_errors": 0}

# Property tests draw the same examples on every run and keep nothing in the checkout (no
# example database; Hypothesis's own caches go to the temporary folder).
# HYPOTHESIS_PROFILE=explore draws new examples on each run instead.
set_hypothesis_home_dir(os.path.join(tempfile.gettempdir(), "billing-test-hypothesis"))
hypothesis_settings.register_profile("tests", derandomize=True, database=None)
hypothesis_settings.register_profile("explore", database=None)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "tests"))


def pytest_collection_modifyitems(config, items):
    from django.conf import settings

    _transactional_tests_restore_migrated_data(items)
    engine = settings.DATABASES["default"]["ENGINE"]
    if "postgresql" in engine:
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL=postgres://...)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


def _transactional_tests_restore_migrated_data(items) -> None:
    """Every transactional test (real commits: threads, live servers, subprocesses) gets
    serialized rollback, so the rows the migrations created (staff groups, permissions)
    are there again for the next test.

    Mixing the two kinds breaks on a fixed test order: a plain transactional test's
    flush re-creates the content types, and the next serialized test's restore then
    inserts them a second time (a unique violation at its set-up).
    """
    for item in items:
        marker = item.get_closest_marker("django_db")
        fixtures = getattr(item, "fixturenames", ())
        options = dict(marker.kwargs) if marker is not None else {}
        transactional = options.get("transaction") or any(
            name in fixtures for name in ("transactional_db", "live_server")
        )
        if transactional and not options.get("serialized_rollback"):
            options.update(transaction=True, serialized_rollback=True)
            item.add_marker(pytest.mark.django_db(**options), append=False)


def pytest_runtest_logreport(report):
    # Runs in the controller too when tests are spread over xdist workers.
    if report.when == "call" and report.passed and "postgres" in report.keywords:
        _ran_on["postgres"] = _ran_on.get("postgres", 0) + 1
    # The hostile client (tests/support/hostile.py) adds its counts at teardown, so the
    # teardown report is the one that carries them.
    if report.when == "teardown":
        for name, value in report.user_properties:
            if name == "hostile_requests":
                _hostile["requests"] += value
            elif name == "hostile_5xx":
                _hostile["server_errors"] += value


def pytest_sessionfinish(session, exitstatus):
    """Each process (the xdist controller and each worker) keeps what it counted in
    <artifacts>/reliability/hostile-<process>.json."""
    if _hostile["requests"]:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        record_figures(f"hostile-{worker}", **_hostile)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    from django.conf import settings

    vendor = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    terminalreporter.write_line(
        f"database: {vendor}; PostgreSQL-only tests passed: {_ran_on.get('postgres', 0)}"
    )
    if _hostile["requests"]:
        terminalreporter.write_line(
            f"hostile: {_hostile['requests']} requests, {_hostile['server_errors']} answered 5xx"
        )


@dataclass
class Persona:
    account: Account
    key: ApiKey
    secret: str


@pytest.fixture
def owner(db) -> Persona:
    """An account that owns the data, with a write key limited to it."""
    account = AccountFactory(org_name="Owner Inc")
    key, secret = make_api_key(scope="write", account=account, name="owner key")
    return Persona(account, key, secret)


@pytest.fixture
def other(db) -> Persona:
    """Another account, whose key must never see the owner's data."""
    account = AccountFactory(org_name="Other Ltd")
    key, secret = make_api_key(scope="write", account=account, name="other key")
    return Persona(account, key, secret)


@pytest.fixture
def admin_key(db) -> tuple[ApiKey, str]:
    """A provider-wide write key (all accounts)."""
    return make_api_key(scope="write", name="provider write key")


@pytest.fixture
def read_key(db) -> tuple[ApiKey, str]:
    """A provider-wide read-only key."""
    return make_api_key(scope="read", name="provider read key")


@pytest.fixture
def staff_user(db, django_user_model):
    return django_user_model.objects.create_user(
        "staff", "staff@example.test", "staff-password-123", is_staff=True, is_superuser=True
    )


@pytest.fixture
def is_postgres() -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture(autouse=True)
def _reset_celery_join_guard():
    """Inline tasks run from worker threads can leave Celery's process-wide
    "inside a task" flag set, after which a later `AsyncResult.get()` refuses
    to wait. Reset it after every test so tests cannot affect each other."""
    yield
    from celery._state import _set_task_join_will_block

    _set_task_join_will_block(False)


@pytest.fixture(autouse=True)
def _empty_verified_key_cache():
    """Each test starts with no API key remembered as verified (billing/api/authentication.py):
    a key cached by one test must not answer in another, whose database was rolled back."""
    from billing.api.authentication import verified_keys

    verified_keys.clear()
    yield
    verified_keys.clear()


@pytest.fixture(autouse=True)
def _empty_shared_cache():
    """Each test starts with an empty cache (shared list totals, sign-in throttling,
    live PDFs): what one test left there must not answer in another."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()
