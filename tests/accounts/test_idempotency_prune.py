"""Expired Idempotency-Key responses are pruned by the command and the Celery task."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.models import IdempotencyKey
from accounts.tasks import idempotency_keys_prune
from tests.factories import make_api_key


@pytest.fixture
def stored_keys(db) -> tuple[IdempotencyKey, IdempotencyKey]:
    api_key, _ = make_api_key(scope="write")
    now = timezone.now()

    def stored(key: str, expires_at: dt.datetime) -> IdempotencyKey:
        return IdempotencyKey.objects.create(
            api_key=api_key,
            key=key,
            request_method="POST",
            request_path="/v1/invoices",
            request_hash="0" * 64,
            status=IdempotencyKey.Status.COMPLETED,
            response_status=201,
            response_body=b"{}",
            expires_at=expires_at,
        )

    return stored("old", now - dt.timedelta(minutes=1)), stored(
        "fresh", now + dt.timedelta(hours=1)
    )


def test_dry_run_counts_and_deletes_nothing(stored_keys):
    out = StringIO()
    call_command("prune_idempotency_keys", "--dry-run", stdout=out)
    assert "1 expired idempotency keys would be deleted" in out.getvalue()
    assert IdempotencyKey.objects.count() == 2


def test_the_command_deletes_only_expired_keys(stored_keys):
    old, fresh = stored_keys
    out = StringIO()
    call_command("prune_idempotency_keys", stdout=out)
    assert "Deleted 1 expired idempotency keys." in out.getvalue()
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["fresh"]
    call_command("prune_idempotency_keys", stdout=out)  # safe to run again
    assert IdempotencyKey.objects.count() == 1


def test_the_task_prunes(stored_keys):
    assert idempotency_keys_prune.delay().get() == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["fresh"]
