"""A real Celery worker on the local Redis runs the billing run against the test database."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import redis
from celery import Celery
from django.conf import settings
from django.db import connection

from invoices.models import Invoice
from tests.support.usage import record
from usage.services import usage_ingest

BROKER = "redis://127.0.0.1:6379/5"


def _redis_up() -> bool:
    try:
        return bool(redis.Redis.from_url(BROKER, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_billing_run_task_in_a_worker(owner, tmp_path):
    if not _redis_up():
        pytest.skip("needs Redis on 127.0.0.1:6379")
    # given: committed usage the worker process can see
    usage_ingest(
        records=[record(id="w1"), record(id="w2", service="RDS")], account_id=owner.account.pk
    )
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    queue = f"test-worker-{uuid.uuid4().hex}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "billing.settings",
        "DEBUG": "0",
        "SECRET_KEY": "worker-test-secret-" + "x" * 40,
        "DATABASE_URL": f"postgres://{auth}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CONN_MAX_AGE": "0",
        "CELERY_BROKER_URL": BROKER,
        "CELERY_RESULT_BACKEND": BROKER,
        "MEDIA_ROOT": str(tmp_path),
    }
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "billing", "worker", "--pool=solo", "-Q", queue,
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "warning"],
        cwd=Path(settings.BASE_DIR), env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    probe = Celery("probe", broker=BROKER, backend=BROKER)
    try:
        # when: the task goes through the broker, not inline
        result = probe.send_task("usage.bill_month", args=["2022-01"], queue=queue)
        summary = result.get(timeout=60)
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        log.close()
        probe.close()
    # then
    assert summary["invoices_created"] == 1, (tmp_path / "worker.log").read_text()
    assert summary["records_billed"] == 2
    invoice = Invoice.objects.get(account=owner.account, creation_type="background")
    assert invoice.line_items.count() == 2
