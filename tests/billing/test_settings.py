"""Settings fail fast and production values pass Django's deployment checks."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(args, **env):
    # A clean environment: only what a production process would have, so
    # variables set by the test run itself (settings module, test-only flags
    # such as DJANGO_ALLOW_ASYNC_UNSAFE) cannot leak into the check.
    base = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "DATABASE_URL") if k in os.environ}
    base.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=base,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_secret_key_required_without_debug():
    result = _run(["check"], DEBUG="0")
    assert result.returncode != 0
    assert "SECRET_KEY is required" in result.stderr


def test_bad_boolean_fails_loudly():
    result = _run(["check"], DEBUG="maybe")
    assert result.returncode != 0
    assert "DEBUG must be a boolean" in result.stderr


def test_check_deploy_passes_with_production_values():
    result = _run(
        ["check", "--deploy", "--fail-level", "WARNING"],
        DEBUG="0",
        SECRET_KEY="prod-" + "k8#Qz!w2" * 8,
        ALLOWED_HOSTS="billing.example.com",
        DATABASE_URL="postgres://billing@db.example.com:5432/billing",
        CELERY_BROKER_URL="redis://redis.example.com:6379/0",
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_deploy_refuses_inline_tasks_and_sqlite():
    result = _run(
        ["check", "--deploy"],
        DEBUG="0",
        SECRET_KEY="prod-" + "k8#Qz!w2" * 8,
        ALLOWED_HOSTS="billing.example.com",
        DATABASE_URL="sqlite:////tmp/billing-check-deploy.sqlite3",
    )
    assert result.returncode != 0
    assert "billing.E001" in result.stderr
    assert "billing.W002" in result.stderr


def test_each_log_record_is_printed_once_and_font_notices_are_dropped(caplog):
    """Django's records reach the console through the root handler only (Django's own
    console handler would print each a second time), and WeasyPrint's per-document
    fontTools notice is filtered out."""
    django_logger = logging.getLogger("django")
    assert django_logger.handlers == [] and django_logger.propagate
    assert logging.getLogger("django.server").propagate
    assert len(logging.getLogger().handlers) >= 1
    weasy = logging.getLogger("weasyprint")
    with caplog.at_level(logging.WARNING, logger="weasyprint"):
        weasy.warning('Using fontTools instead of HarfBuzz-Subset for font "%s".', "DejaVu")
        weasy.warning("something else")
    assert [r.getMessage() for r in caplog.records if r.name == "weasyprint"] == ["something else"]


def test_without_a_broker_inline_tasks_look_for_no_server(settings, caplog):
    """An inline task still takes a producer: on the in-memory transport, not a
    local AMQP server kombu would warn about ("No hostname was supplied")."""
    from billing.celery import app

    assert settings.CELERY_TASK_ALWAYS_EAGER
    assert settings.CELERY_BROKER_URL.startswith("memory://")
    with caplog.at_level(logging.WARNING), app.producer_or_acquire(None) as producer:
        assert producer.connection.transport_cls == "memory"
    assert not [r for r in caplog.records if r.name.startswith(("kombu", "celery"))]
