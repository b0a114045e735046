"""The benchmark runner works end to end at the smallest scale.

Only that it runs and reports: every benchmark row is there, measured, with
numbers. The figures themselves are never asserted (they depend on the machine).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest
from django.conf import settings

from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
SMOKE_DATABASE = "bench_smoke"

# Every row the runner reports, and the figures each one must carry.
HTTP_FIELDS = ("rps", "p50_ms", "p99_ms", "errors", "requests", "queries", "bytes", "peak_mb")
EXPECTED = {
    "healthz": HTTP_FIELDS,
    "api_invoices_json": HTTP_FIELDS,
    "api_invoices_json_filtered": HTTP_FIELDS,
    "api_invoices_json_deep": HTTP_FIELDS,
    "api_invoices_xml": HTTP_FIELDS,
    "api_invoices_xml_filtered": HTTP_FIELDS,
    "api_invoices_xml_deep": HTTP_FIELDS,
    "api_invoice_xml": HTTP_FIELDS,
    "api_invoice_json": HTTP_FIELDS,
    "api_account_invoices_json": HTTP_FIELDS,
    "v1_invoices_first": HTTP_FIELDS,
    "v1_invoices_filtered": HTTP_FIELDS,
    "v1_invoices_deep": HTTP_FIELDS,
    "v1_invoice": HTTP_FIELDS,
    "usage_report": HTTP_FIELDS,
    "usage_report_by_service": HTTP_FIELDS,
    "pdf_stored": HTTP_FIELDS,
    "usage_ingest": ("figure", "rps", "p50_ms", "p99_ms", "errors", "queries", "peak_mb"),
    "worker_memory": ("figure", "peak_mb"),
    "pdf_render": ("figure", "p50_ms", "p99_ms", "bytes"),
    "pdf_pool": ("figure", "rps"),
    "billing_run": ("figure",),
    "delivery_webhooks": ("figure",),
    "delivery_lag": ("figure",),
}

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def smoke_database_url() -> str:
    """The test database's server, with the benchmark's own small database (never `bench`);
    BENCH_SMOKE_DATABASE_URL (as `make bench-smoke` reads it) names another one."""
    if os.environ.get("BENCH_SMOKE_DATABASE_URL"):
        return os.environ["BENCH_SMOKE_DATABASE_URL"]
    db = settings.DATABASES["default"]
    user = urllib.parse.quote(db.get("USER") or "postgres")
    password = db.get("PASSWORD")
    auth = f"{user}:{urllib.parse.quote(password)}" if password else user
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{auth}@{host}:{port}/{SMOKE_DATABASE}"


def run_smoke(tmp_path: Path) -> dict:
    if shutil.which("wrk") is None:
        pytest.fail("wrk is not installed (apt-get install wrk); the benchmark needs it")
    output = tmp_path / "results.json"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DJANGO_SETTINGS_MODULE", "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS"}
    }
    env["DATABASE_URL"] = smoke_database_url()
    done = subprocess.run(
        [
            sys.executable,
            "bench/run.py",
            "--scale",
            "0.001",
            "--duration",
            "1",
            "--port",
            str(free_port()),
            "--output",
            str(output),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(output.read_text())


def test_smoke_run_reports_every_benchmark_with_numbers(tmp_path):
    # given a run at the smallest scale, against its own small database
    results = run_smoke(tmp_path)
    rows = {row["name"]: row for row in results["rows"]}

    # then every benchmark is there, measured, and carries its figures as numbers
    assert set(EXPECTED) <= set(rows), f"missing rows: {sorted(set(EXPECTED) - set(rows))}"
    for name, fields in EXPECTED.items():
        row = rows[name]
        assert row["status"] == "ok", f"{name}: {row['status']} {row['note']}"
        for field in fields:
            value = row[field]
            assert isinstance(value, int | float) and not isinstance(value, bool), (
                f"{name}.{field} is {value!r}"
            )
            assert value >= 0, f"{name}.{field} is {value!r}"
    # and every request rate is also a share of /healthz, measured first in the same run
    assert results["rows"][0]["name"] == "healthz"
    assert rows["healthz"]["ratio"] == 1.0
    for name, fields in EXPECTED.items():
        if fields == HTTP_FIELDS:
            assert isinstance(rows[name]["ratio"], float), f"{name} has no share of /healthz"
            assert rows[name]["ratio"] > 0
    ingest = rows["usage_ingest"]["extra"]
    assert ingest["records_stored"] == ingest["records_sent"]
    assert rows["billing_run"]["extra"]["records_billed"] > 0

    # and the run says where and on what it ran
    assert results["machine"]["nproc"] >= 1
    assert results["machine"]["postgresql"]
    assert results["settings"]["scale"] == 0.001
    assert results["data"]["invoices"] >= 24
    assert results["data"]["usage_records"] >= 24
