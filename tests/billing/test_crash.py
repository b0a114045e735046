"""Crash safety on PostgreSQL: kill -9 in the middle of the work, retry, and compare.

The server (gunicorn, in its own process group) and the billing run are real processes
on this test's database. Each is killed with SIGKILL while it works, then the client
retries as a client would. The end state must equal the state of an uninterrupted run:
the same rows, the same totals, nothing twice.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
import requests
from django.db.models import Sum
from django.utils import timezone

from invoices.models import Invoice
from tests.factories import AccountFactory, make_api_key
from tests.support.artifacts import record_figures
from tests.support.billing_run import assert_billed_once, database_url, manage, seed_usage
from tests.support.ports import free_port
from usage.models import UsageRecord

# serialized_rollback: a plain flush after these tests would drop the data the migrations
# load (the staff groups) and recreate content types under new ids, which later
# serialized tests (the browser tests) could not load their snapshot over.
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

ROOT = Path(__file__).resolve().parents[2]
PORT = int(os.environ.get("CRASH_TEST_PORT") or free_port())
BASE = f"http://127.0.0.1:{PORT}"


class Server:
    """gunicorn on this test's database, in its own process group so kill -9 takes it all."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        env = dict(
            os.environ,
            DATABASE_URL=database_url(),
            DJANGO_SETTINGS_MODULE="tests.settings",
            CONN_MAX_AGE="0",
        )
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "billing.wsgi",
                "--bind",
                f"127.0.0.1:{PORT}",
                "--workers",
                "2",
                "--timeout",
                "120",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{BASE}/healthz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError("gunicorn did not start")

    def kill9(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill9()


@pytest.fixture
def server():
    server = Server()
    server.start()
    yield server
    server.stop()


def _busy_in_database(table: str) -> bool:
    """Whether another connection is writing `table` right now (mid-transaction)."""
    with psycopg.connect(database_url(), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND state <> 'idle' AND query ILIKE %s",
            [f"%{table}%"],
        ).fetchone()
    return bool(row and row[0])


def _usage_batch(account_id: int, size: int) -> list[dict]:
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    return [
        {
            "id": f"crash-{n}",
            "account_id": account_id,
            "resource_id": f"i-{n % 17}",
            "service": ("EC2", "S3", "RDS")[n % 3],
            "region": ("us-east-1", "eu-west-1")[n % 2],
            "start_time": (start + dt.timedelta(minutes=n)).isoformat(),
            "end_time": (start + dt.timedelta(minutes=n + 1)).isoformat(),
            "cost": f"0.{(n % 97) + 1:02d}",
        }
        for n in range(size)
    ]


def test_a_usage_batch_killed_mid_request_is_whole_after_a_retry(server):
    # given a large batch and a server working on it
    account = AccountFactory()
    _, secret = make_api_key(scope="write", name="crash")
    batch = _usage_batch(account.pk, 10_000)
    expected_total = sum(Decimal(r["cost"]) for r in batch)
    headers = {"Authorization": f"Bearer {secret}"}
    outcome: dict[str, object] = {}

    def send() -> None:
        try:
            outcome["response"] = requests.post(
                f"{BASE}/v1/usage", json=batch, headers=headers, timeout=120
            )
        except requests.RequestException as exc:
            outcome["error"] = exc

    sender = threading.Thread(target=send)
    sender.start()
    # when the server is killed while it writes the batch (or, at the latest, after 10 s)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not _busy_in_database("usage_usagerecord"):
        time.sleep(0.005)
    server.kill9()
    sender.join(timeout=60)
    interrupted = "error" in outcome
    stored_after_crash = UsageRecord.objects.filter(account=account).count()
    assert stored_after_crash in (0, len(batch))  # all or nothing, even under kill -9

    # then a retry against a restarted server completes the batch exactly once
    server.start()
    retry = requests.post(f"{BASE}/v1/usage", json=batch, headers=headers, timeout=120)
    assert retry.status_code in (200, 201), retry.text
    assert retry.json()["received"] == len(batch)
    records = UsageRecord.objects.filter(account=account)
    assert records.count() == len(batch)
    assert records.values("client_id").distinct().count() == len(batch)
    assert records.aggregate(s=Sum("cost"))["s"] == expected_total
    # and a second retry changes nothing
    again = requests.post(f"{BASE}/v1/usage", json=batch, headers=headers, timeout=120)
    assert again.status_code == 200
    assert again.json()["duplicates"] == len(batch)
    assert records.count() == len(batch)
    record_figures(
        "crash_usage_batch",
        records=len(batch),
        request_interrupted=interrupted,
        stored_before_retry=stored_after_crash,
        stored_after_retry=records.count(),
        duplicates=0,
        lost=0,
    )


def test_a_billing_run_killed_mid_way_is_finished_by_the_next_run(db):
    period = (timezone.now().date().replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    totals = seed_usage(accounts=60, records=6, period=period)
    month = f"{period:%Y-%m}"

    # when a run is killed after it has billed some accounts but not all
    run = manage(
        "run_billing", "--month", month, "--batch-size", "1", "--workers", "1", "--no-progress"
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and run.poll() is None:
        if Invoice.objects.filter(period=period).count() >= 5:
            break
        time.sleep(0.01)
    if run.poll() is None:
        os.kill(run.pid, signal.SIGKILL)
    run.communicate(timeout=60)
    billed_before = Invoice.objects.filter(period=period).count()
    assert billed_before < len(totals), "the run finished before it could be killed"

    # then the next run bills the rest, and the result is that of one uninterrupted run
    rerun = manage("run_billing", "--month", month, "--no-progress")
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, out + err
    assert_billed_once(totals, period)
    assert Invoice.objects.filter(period=period).count() == len(totals)
    # and a third run finds nothing left to do
    third = manage("run_billing", "--month", month, "--no-progress")
    out, err = third.communicate(timeout=300)
    assert third.returncode == 0, out + err
    assert_billed_once(totals, period)
    record_figures(
        "crash_billing_run",
        accounts=len(totals),
        invoices_when_killed=billed_before,
        invoices_after_rerun=Invoice.objects.filter(period=period).count(),
        duplicates=0,
        lost=0,
    )
