"""Benchmark the billing back office on PostgreSQL at realistic scale.

Loads the data if it is not there yet (bench/generate.py: 10,000 accounts,
1,000,000 invoices, 10,000,000 usage records at --scale 1), starts the app
under gunicorn as production runs it, and measures with wrk at 16 connections
after a warm-up: the /api and /v1 invoice reads, the usage report, usage
ingestion, a billing run of one month of pre-rated usage, a billing run of
one month of plans (1,000,000 metered records for 10,000 subscribed accounts,
rated by a graduated plan), PDF rendering and a stored PDF served, against a
hello-world view as the ceiling. Prints a table and writes
bench-results/results.json. Figures, never assertions: a missed target is
reported, not failed.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench python bench/run.py
    python bench/run.py --scale 0.001 --duration 1      # the smoke run CI uses
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import platform
import queue
import secrets
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import wrk  # noqa: E402
from bench.server import Gunicorn, production_env  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench"
BENCH_KEY_NAME = "bench runner"
PDF_BUYER = "Bench PDF buyer"
PDF_LINES = 10
INGEST_BATCH = 5_000

# Targets printed beside the figures (issue 18): every request rate as a share of
# /healthz measured in the same run, and p99 at --connections (16) connections.
DETAIL_SHARE_OF_HEALTHZ = 0.50  # one invoice, both APIs, JSON and XML
LIST_SHARE_OF_HEALTHZ = {"json": 0.40, "xml": 0.30}  # 20 per page, any filter, any page
P99_MS = 50.0
LIST_PER_PAGE = 20
INGEST_RECORDS_PER_S = 100_000
REPORT_P50_MS = 50.0
BILLING_RUN_S = 60.0
RATED_BILLING_RUN_S = 60.0
# The rated billing run: 1,000,000 metered records for 10,000 subscribed accounts at --scale 1.
RATED_RECORDS = 1_000_000
RATED_ACCOUNTS = 10_000
RATED_METRIC = "bench_calls"
RATED_PLAN = "bench-rated"
# Rows measured without the server (`--only billing_run,rated_billing_run` needs no wrk).
OFFLINE_ROWS = ("billing_run", "rated_billing_run")
PDF_P50_MS = 150.0
WORKER_MEMORY_MB = 150.0


@dataclass
class Row:
    """One benchmark's figures; `status` is ok, missing (endpoint not there yet) or failed."""

    name: str
    title: str
    status: str = "ok"
    url: str | None = None
    rps: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    errors: int | None = None
    requests: int | None = None
    queries: int | None = None
    bytes: int | None = None
    peak_mb: float | None = None
    figure: float | None = None
    unit: str = ""
    # req/s as a share of /healthz's req/s in the same run (1.0 = as fast as hello world).
    ratio: float | None = None
    target: str = ""
    met: bool | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)


@dataclass
class Fixture:
    key: str
    invoice_id: int
    account_id: int
    list_month: str
    deep_page: int
    report_account_id: int
    report_start: str
    report_end: str
    billing_month: dt.date
    rated_month: dt.date
    pdf_invoice_id: int
    accounts: list[int]


def say(text: str = "", *, stream=None) -> None:
    stream = stream or sys.stdout
    stream.write(text + "\n")
    stream.flush()


def months_back(today: dt.date, n: int) -> dt.date:
    index = today.year * 12 + today.month - 1 - n
    return dt.date(index // 12, index % 12 + 1, 1)


def month_end(first: dt.date) -> dt.date:
    return months_back(first, -1) - dt.timedelta(days=1)


# --- set-up ------------------------------------------------------------------------


def ensure_database(url: str) -> None:
    """Create the database named by `url` if it does not exist (a fresh machine, CI)."""
    import psycopg

    parts = urllib.parse.urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urllib.parse.urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def load_data(env: dict[str, str], scale: float) -> dict:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "generate.py"), "--scale", repr(scale)],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
    sys.stdout.write(done.stdout)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"bench/generate.py failed (exit {done.returncode})")
    return {
        "loaded_now": "already loaded" not in done.stdout,
        "seconds": round(time.monotonic() - started, 1),
        "log": done.stdout.strip().splitlines(),
    }


def setup_django(env: dict[str, str]) -> None:
    os.environ.update(env)
    import django

    django.setup()


def make_fixture() -> Fixture:
    """The key, ids and months the requests use, chosen from the loaded data."""
    from django.db import connection
    from django.db.models import ProtectedError
    from django.utils import timezone

    from accounts.models import ApiKey
    from accounts.services import api_key_create

    try:
        ApiKey.objects.filter(name=BENCH_KEY_NAME).delete()
    except ProtectedError:
        ApiKey.objects.filter(name=BENCH_KEY_NAME, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
    _, secret = api_key_create(name=BENCH_KEY_NAME, scope="write")

    today = timezone.now().date()
    list_month = months_back(today, 2)
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM invoices_invoice")
        invoices = cur.fetchone()[0]
        # A paid invoice from the middle of the table, and its account.
        cur.execute(
            "SELECT id, account_id FROM invoices_invoice WHERE state = 'paid' AND id >= %s "
            "ORDER BY id LIMIT 1",
            [invoices // 2],
        )
        invoice_id, account_id = cur.fetchone()
        cur.execute(
            "SELECT id FROM accounts_account WHERE state = 'active' AND org_name <> %s "
            "ORDER BY id LIMIT 200",
            [PDF_BUYER],
        )
        accounts = [row[0] for row in cur.fetchall()]
    # OFFSET pagination: about 20,000 rows deep at full scale, half the list on a small one.
    deep_page = max(2, min(1000, invoices // 40))
    report_month = months_back(today, 2)
    return Fixture(
        key=secret,
        invoice_id=invoice_id,
        account_id=account_id,
        list_month=f"{list_month:%Y-%m}",
        deep_page=deep_page,
        report_account_id=accounts[len(accounts) // 2],
        report_start=f"{report_month:%Y-%m-%d}",
        report_end=f"{month_end(report_month):%Y-%m-%d}",
        billing_month=months_back(today, 1),
        rated_month=months_back(today, 0),
        pdf_invoice_id=pdf_invoice(),
        accounts=accounts,
    )


def pdf_invoice() -> int:
    """An issued invoice with ten lines, made once through the services, its PDF stored."""
    from decimal import Decimal

    from accounts.models import Account
    from accounts.services import account_create
    from invoices import services
    from invoices.models import Invoice
    from invoices.tasks import invoice_render_pdf

    invoice = (
        Invoice.objects.filter(account__org_name=PDF_BUYER, state=Invoice.State.PENDING)
        .order_by("id")
        .first()
    )
    if invoice is None:
        account = Account.objects.filter(org_name=PDF_BUYER).first() or account_create(
            org_name=PDF_BUYER,
            billing_email="accounts@pdf-buyer.example.test",
            address_line1="221B Baker Street",
            city="London",
            zip="NW1 6XE",
            country="United Kingdom",
            vat_code="GB123456789",
            vat_rate=Decimal("20.00"),
            currency="EUR",
            card_token="tok_visa",
        )
        invoice = services.invoice_create(account=account, actor="system:bench")
        for n in range(1, PDF_LINES + 1):
            services.line_item_add(
                invoice=invoice,
                name=f"Service {n}",
                description=f"Usage of service {n} over the month, metered hourly",
                quantity=Decimal(n * 3),
                unit_price=Decimal("12.5") + n,
                actor="system:bench",
            )
        invoice = services.invoice_issue(invoice=invoice, actor="system:bench")
        invoice.refresh_from_db()
    # An earlier run may have stored it under another MEDIA_ROOT: without the file
    # here the signed link would render on every request instead of serving it.
    if not invoice.pdf or not invoice.pdf.storage.exists(invoice.pdf.name):
        invoice_render_pdf(invoice.pk, force=True)
    return invoice.pk


# --- HTTP helpers ----------------------------------------------------------------------


def http_request(
    base_url: str, method: str, path: str, headers: dict[str, str], body: bytes | None = None
) -> tuple[int, dict[str, str], bytes]:
    parts = urllib.parse.urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def count_queries(method: str, path: str, headers: dict[str, str], body: bytes | None = None):
    """SQL statements of one request, in-process against the same database (after a warm call)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(raise_request_exception=False)
    django_headers = {name.lower(): value for name, value in headers.items()}

    def call():
        if method == "GET":
            return client.get(path, headers=django_headers)
        return client.post(path, data=body, content_type="application/json", headers=django_headers)

    if method == "GET":
        call()
    with CaptureQueriesContext(connection) as captured:
        response = call()
    return len(captured.captured_queries), response.status_code


# --- the measurements ------------------------------------------------------------------


class Bench:
    def __init__(self, args, server: Gunicorn, fixture: Fixture) -> None:
        self.args = args
        self.server = server
        self.fixture = fixture
        self.rows: list[Row] = []
        self.healthz_rps: float | None = None

    def wanted(self, name: str) -> bool:
        only = self.args.only
        return not only or any(name.startswith(prefix) for prefix in only)

    def add(self, row: Row, *, server_memory: bool = True) -> Row:
        """Keep a row and print its line; server rows also record the workers' peak memory."""
        if server_memory and row.peak_mb is None and row.status == "ok":
            row.peak_mb = self.server.peak_memory_mb()
        self.rows.append(row)
        if row.rps is not None and self.healthz_rps and row.unit == "req/s":
            row.ratio = round(row.rps / self.healthz_rps, 4)
        flag = {True: "met", False: "MISSED", None: ""}[row.met]
        figure = f"{row.figure:,.1f} {row.unit}" if row.figure is not None else row.status
        ratio = f"{row.ratio:.1%} of /healthz" if row.ratio is not None else ""
        say(f"  {row.title:<50} {figure:>22} {ratio:>17}  {flag} {row.note}")
        return row

    # HTTP reads under wrk -------------------------------------------------------------

    def http_row(
        self,
        name: str,
        title: str,
        path: str,
        headers: dict[str, str],
        kind: str,
        *,
        always: bool = False,
    ) -> None:
        if not (always or self.wanted(name)):
            return
        row = Row(name=name, title=title, url=path.split("?")[0])
        status, _, body = http_request(self.server.base_url, "GET", path, headers)
        if status in (404, 405):
            row.status, row.note = "missing", f"HTTP {status}: endpoint not there yet"
            self.add(row)
            return
        self.measure(row, path, headers, kind, status=status, body=body)

    def measure(
        self, row: Row, path: str, headers: dict[str, str], kind: str, *, status: int, body: bytes
    ) -> None:
        """Queries and size of one request, then wrk's figures after the warm-up."""
        if not 200 <= status < 300:
            row.status, row.note = "failed", f"HTTP {status}: {body[:200]!r}"
            self.add(row)
            return
        row.bytes = len(body)
        row.queries, _ = count_queries("GET", path, headers)
        url = self.server.base_url + path
        load = {"connections": self.args.connections, "headers": headers}
        if self.args.warmup:
            wrk.run(url, seconds=self.args.warmup, **load)
        result = wrk.run(url, seconds=self.args.duration, **load)
        row.rps, row.p50_ms, row.p99_ms = round(result.rps, 1), result.p50_ms, result.p99_ms
        row.errors, row.requests = result.errors, result.requests
        row.figure, row.unit = row.rps, "req/s"
        self.judge(row, kind)
        self.add(row)

    def judge(self, row: Row, kind: str) -> None:
        """The row's target and whether it is met; kinds: healthz, detail, list_json,
        list_xml (a share of /healthz and p99), report (p50), read (no target)."""
        if kind == "healthz":
            self.healthz_rps = row.rps
            row.target = "the reference (100%)"
            return
        if kind == "report":
            row.target = f"p50 <= {REPORT_P50_MS:.0f} ms"
            row.met = row.p50_ms <= REPORT_P50_MS
            return
        share = {
            "detail": DETAIL_SHARE_OF_HEALTHZ,
            "list_json": LIST_SHARE_OF_HEALTHZ["json"],
            "list_xml": LIST_SHARE_OF_HEALTHZ["xml"],
        }.get(kind)
        if share is None:
            return
        row.target = f">= {share:.0%} of /healthz, p99 < {P99_MS:.0f} ms"
        if self.healthz_rps:
            row.met = row.rps >= share * self.healthz_rps and row.p99_ms < P99_MS
        else:
            row.met = None
            row.note = "no /healthz figure in this run to compare with"

    def reads(self) -> None:
        f = self.fixture
        token = f"access_token={urllib.parse.quote(f.key)}"
        bearer = {"Authorization": f"Bearer {f.key}"}
        filtered = f"state=paid&month={f.list_month}"
        per_page = f"per_page={LIST_PER_PAGE}"
        # First, and whatever --only says: every other figure is read as a share of it.
        self.http_row(
            "healthz",
            "GET /healthz (hello world, the reference)",
            "/healthz",
            {},
            "healthz",
            always=True,
        )
        for fmt in ("json", "xml"):
            self.http_row(
                f"api_invoice_{fmt}",
                f"GET /api/invoices/{{id}}.{fmt}",
                f"/api/invoices/{f.invoice_id}.{fmt}?{token}",
                {},
                "detail",
            )
        self.http_row(
            "v1_invoice", "GET /v1/invoices/{id}", f"/v1/invoices/{f.invoice_id}", bearer, "detail"
        )
        for fmt in ("json", "xml"):
            self.http_row(
                f"api_invoices_{fmt}",
                f"GET /api/invoices.{fmt} (first page)",
                f"/api/invoices.{fmt}?{per_page}&{token}",
                {},
                f"list_{fmt}",
            )
            self.http_row(
                f"api_invoices_{fmt}_filtered",
                f"GET /api/invoices.{fmt} (state+month)",
                f"/api/invoices.{fmt}?{filtered}&{per_page}&{token}",
                {},
                f"list_{fmt}",
            )
            self.http_row(
                f"api_invoices_{fmt}_deep",
                f"GET /api/invoices.{fmt} (page {f.deep_page})",
                f"/api/invoices.{fmt}?page={f.deep_page}&{per_page}&{token}",
                {},
                f"list_{fmt}",
            )
        self.http_row(
            "api_account_invoices_json",
            "GET /api/accounts/{id}/invoices.json",
            f"/api/accounts/{f.account_id}/invoices.json?{per_page}&{token}",
            {},
            "list_json",
        )
        self.http_row(
            "v1_invoices_first",
            "GET /v1/invoices (first page)",
            f"/v1/invoices?{per_page}",
            bearer,
            "list_json",
        )
        self.http_row(
            "v1_invoices_filtered",
            "GET /v1/invoices (state+month)",
            f"/v1/invoices?{filtered}&{per_page}",
            bearer,
            "list_json",
        )
        self.http_row(
            "v1_invoices_deep",
            f"GET /v1/invoices (page {f.deep_page})",
            f"/v1/invoices?page={f.deep_page}&{per_page}",
            bearer,
            "list_json",
        )
        report = (
            f"/v1/usage/report?start_date={f.report_start}&end_date={f.report_end}"
            f"&account_id={f.report_account_id}"
        )
        self.http_row(
            "usage_report", "GET /v1/usage/report (one account-month)", report, bearer, "report"
        )
        self.http_row(
            "usage_report_by_service",
            "GET /v1/usage/report (grouped by service)",
            report + "&group_by=service",
            bearer,
            "report",
        )

    def stored_pdf(self) -> None:
        """wrk against the signed link that /api/invoices/{id}.pdf redirects to."""
        if not self.wanted("pdf_stored"):
            return
        f = self.fixture
        row = Row(name="pdf_stored", title="GET stored PDF (signed link)")
        path = f"/api/invoices/{f.pdf_invoice_id}.pdf?access_token={urllib.parse.quote(f.key)}"
        status, headers, body = http_request(self.server.base_url, "GET", path, {})
        if status in (404, 405):
            row.status, row.note = "missing", f"HTTP {status} from {path.split('?')[0]}"
            self.add(row)
            return
        location = headers.get("Location") or headers.get("location")
        if status not in (301, 302, 303, 307) or not location:
            row.status, row.note = "failed", f"expected a redirect, got HTTP {status}"
            self.add(row)
            return
        link = urllib.parse.urljoin(self.server.base_url + path, location)
        parts = urllib.parse.urlsplit(link)
        link_path = parts.path + (f"?{parts.query}" if parts.query else "")
        row.url = parts.path
        status, _, body = http_request(self.server.base_url, "GET", link_path, {})
        self.measure(row, link_path, {}, "read", status=status, body=body)

    # Ingestion ------------------------------------------------------------------------

    def ingest(self) -> None:
        if not self.wanted("usage_ingest"):
            return
        import orjson
        from django.db import connection

        row = Row(name="usage_ingest", title=f"POST /v1/usage ({INGEST_BATCH:,}-record batches)")
        headers = {
            "Authorization": f"Bearer {self.fixture.key}",
            "Content-Type": "application/json",
        }
        batches = max(4, 4 * self.args.duration)
        concurrency = max(1, min(4, self.args.workers))
        tag = secrets.token_hex(4)
        now = dt.datetime.now(dt.UTC)
        accounts = self.fixture.accounts
        services = ("EC2", "RDS", "S3", "Lambda", "EKS")
        regions = ("us-west-1", "us-east-1", "eu-west-1")

        def batch(number: int) -> bytes:
            records = []
            for i in range(INGEST_BATCH):
                start = now - dt.timedelta(hours=2, seconds=(number * INGEST_BATCH + i) % 80_000)
                records.append(
                    {
                        "id": f"bench-{tag}-{number}-{i}",
                        "account_id": accounts[i % len(accounts)],
                        "resource_id": f"i-{i % 5000:08x}",
                        "resource_name": f"server-{i % 50}",
                        "service": services[i % 5],
                        "region": regions[i % 3],
                        "start_time": start.isoformat().replace("+00:00", "Z"),
                        "end_time": (start + dt.timedelta(seconds=3600))
                        .isoformat()
                        .replace("+00:00", "Z"),
                        "duration": 3600,
                        "cost": f"{0.0416 + (i % 7) * 0.01:.4f}",
                    }
                )
            return orjson.dumps(records)

        bodies = [batch(n) for n in range(batches)]
        with connection.cursor() as cur:
            cur.execute("SELECT coalesce(max(id), 0) FROM usage_usagerecord")
            max_before = cur.fetchone()[0]
        try:
            status, _, body = http_request(
                self.server.base_url, "POST", "/v1/usage", headers, bodies[0]
            )
            if status in (404, 405):
                row.status, row.note = "missing", f"HTTP {status}: POST /v1/usage not there yet"
                self.add(row)
                return
            if not 200 <= status < 300:
                row.status, row.note = "failed", f"HTTP {status}: {body[:300]!r}"
                self.add(row)
                return
            row.bytes = len(body)
            row.queries, _ = count_queries("POST", "/v1/usage", headers, batch(batches))
            work: queue.Queue[bytes] = queue.Queue()
            for body_ in bodies[1:]:
                work.put(body_)
            latencies: list[float] = []
            failures: list[int] = []
            lock = threading.Lock()

            def client() -> None:
                parts = urllib.parse.urlsplit(self.server.base_url)
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
                while True:
                    try:
                        payload = work.get_nowait()
                    except queue.Empty:
                        break
                    t0 = time.perf_counter()
                    try:
                        conn.request("POST", "/v1/usage", body=payload, headers=headers)
                        response = conn.getresponse()
                        response.read()
                        code = response.status
                    except (OSError, http.client.HTTPException):
                        conn.close()
                        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
                        code = 0
                    with lock:
                        latencies.append((time.perf_counter() - t0) * 1000)
                        if not 200 <= code < 300:
                            failures.append(code)
                conn.close()

            stored_before = stored_since(max_before)
            started = time.perf_counter()
            threads = [threading.Thread(target=client) for _ in range(concurrency)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.perf_counter() - started
            timed_records = stored_since(max_before) - stored_before
            row.requests = len(latencies)
            row.errors = len(failures)
            row.rps = round(len(latencies) / elapsed, 2)
            row.p50_ms = round(statistics.median(latencies), 1)
            row.p99_ms = round(percentile(latencies, 99), 1)
            row.figure, row.unit = round(timed_records / elapsed), "records/s"
            row.target = f">= {INGEST_RECORDS_PER_S:,} records/s"
            row.met = row.figure >= INGEST_RECORDS_PER_S
            row.extra = {
                "records_stored": timed_records,
                "records_sent": (batches - 1) * INGEST_BATCH,
                "clients": concurrency,
                "seconds": round(elapsed, 2),
            }
            self.add(row)
        finally:
            with connection.cursor() as cur:
                cur.execute("DELETE FROM usage_usagerecord WHERE id > %s", [max_before])

    # Billing run ------------------------------------------------------------------------

    def billing_run(self, env: dict[str, str]) -> None:
        if not self.wanted("billing_run"):
            return
        month = self.fixture.billing_month
        row = Row(name="billing_run", title=f"manage.py run_billing --month {month:%Y-%m}")
        undo_billing_run(month)
        command = [sys.executable, "manage.py", "run_billing", "--month", f"{month:%Y-%m}"]
        started = time.perf_counter()
        done = subprocess.run(
            command, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True
        )
        elapsed = time.perf_counter() - started
        try:
            if done.returncode != 0:
                unknown = "Unknown command" in done.stderr
                row.status = "missing" if unknown else "failed"
                row.note = (done.stderr.strip().splitlines() or ["(no output)"])[-1][:300]
                self.add(row, server_memory=False)
                return
            invoices, lines, records = billing_run_counts(month)
            row.figure, row.unit = round(elapsed, 1), "s"
            row.target = f"<= {BILLING_RUN_S:.0f} s"
            row.met = elapsed <= BILLING_RUN_S
            row.extra = {
                "invoices_created": invoices,
                "lines_created": lines,
                "records_billed": records,
                "records_per_s": round(records / elapsed) if elapsed else None,
            }
            row.note = f"{invoices:,} invoices, {records:,} records"
            self.add(row, server_memory=False)
        finally:
            undo_billing_run(month)
            vacuum()

    def rated_billing_run(self, env: dict[str, str]) -> None:
        """The billing run of a month of plans: a monthly fee and graduated metered usage
        for every subscribed account (load_rated_data), nothing pre-rated."""
        if not self.wanted("rated_billing_run"):
            return
        month = self.fixture.rated_month
        row = Row(
            name="rated_billing_run",
            title=f"manage.py run_billing --month {month:%Y-%m} (plans)",
        )
        loaded = load_rated_data(self.args.scale, month)
        undo_billing_run(month)
        vacuum()
        command = [sys.executable, "manage.py", "run_billing", "--month", f"{month:%Y-%m}"]
        load_before = load_average()
        started = time.perf_counter()
        done = subprocess.run(
            command, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True
        )
        elapsed = time.perf_counter() - started
        try:
            if done.returncode != 0:
                row.status = "failed"
                row.note = (done.stderr.strip().splitlines() or ["(no output)"])[-1][:300]
                self.add(row, server_memory=False)
                return
            invoices, lines, records = billing_run_counts(month)
            row.figure, row.unit = round(elapsed, 1), "s"
            row.target = f"<= {RATED_BILLING_RUN_S:.0f} s"
            row.met = elapsed <= RATED_BILLING_RUN_S
            row.extra = {
                "subscribed_accounts": loaded["accounts"],
                "rated_records": loaded["records"],
                "invoices_created": invoices,
                "lines_created": lines,
                "records_billed": records,
                "records_per_s": round(records / elapsed) if elapsed else None,
                "load_average_before": load_before,
                "load_average_after": load_average(),
            }
            row.note = f"{invoices:,} invoices, {lines:,} lines, {records:,} rated records"
            self.add(row, server_memory=False)
        finally:
            undo_billing_run(month)
            vacuum()

    # Delivery (bench/delivery_bench.py) -------------------------------------------------------

    def delivery(self, env: dict[str, str]) -> None:
        if not self.wanted("delivery"):
            return
        accounts = max(100, int(10_000 * self.args.scale))
        output = self.args.output.parent / "delivery.json"
        command = [
            sys.executable,
            "bench/delivery_bench.py",
            "--accounts",
            str(accounts),
            "--webhooks",
            str(max(200, int(5_000 * self.args.scale))),
            "--output",
            str(output),
        ]
        done = subprocess.run(
            command, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True
        )
        if done.returncode != 0:
            note = (done.stderr.strip().splitlines() or ["(no output)"])[-1][:300]
            for name in ("delivery_webhooks", "delivery_lag"):
                self.add(
                    Row(name=name, title="bench/delivery_bench.py", status="failed", note=note),
                    server_memory=False,
                )
            return
        figures = json.loads(output.read_text())
        rate, lag = figures["throughput"], figures["lag"]
        self.add(
            Row(
                name="delivery_webhooks",
                title=f"webhooks delivered to a local receiver ({figures['workers']} senders)",
                figure=rate["per_second"],
                unit="/s",
                extra=rate,
                note=f"{rate['webhooks']:,} signed POSTs",
            ),
            server_memory=False,
        )
        self.add(
            Row(
                name="delivery_lag",
                title=f"outbox lag while {lag['issued']:,} billing-run invoices are issued",
                figure=lag["lag_p99_s"],
                unit="s p99",
                extra=lag,
                note=f"p50 {lag['lag_p50_s']} s, max {lag['lag_max_s']} s; "
                f"{lag['messages']:,} messages drained {lag['drained_after_s']} s after the first issue",
            ),
            server_memory=False,
        )

    # PDF rendering ----------------------------------------------------------------------

    def pdf(self) -> None:
        if self.wanted("pdf_render"):
            from invoices.models import Invoice
            from invoices.pdf import invoice_pdf_bytes

            invoice = Invoice.objects.get(pk=self.fixture.pdf_invoice_id)
            invoice_pdf_bytes(invoice)  # fonts, templates and WeasyPrint's caches
            runs = max(3, min(20, 2 * self.args.duration))
            times = []
            size = 0
            for _ in range(runs):
                t0 = time.perf_counter()
                size = len(invoice_pdf_bytes(Invoice.objects.get(pk=invoice.pk)))
                times.append((time.perf_counter() - t0) * 1000)
            row = Row(
                name="pdf_render",
                title=f"PDF render, {PDF_LINES} lines (in-process)",
                p50_ms=round(statistics.median(times), 1),
                p99_ms=round(percentile(times, 99), 1),
                requests=runs,
                errors=0,
                bytes=size,
                target=f"p50 <= {PDF_P50_MS:.0f} ms",
            )
            row.figure, row.unit = row.p50_ms, "ms p50"
            row.met = row.p50_ms <= PDF_P50_MS
            self.add(row, server_memory=False)
        if self.wanted("pdf_pool"):
            processes = os.cpu_count() or 1
            count = processes * max(2, min(8, self.args.duration))
            seconds = render_pool(self.fixture.pdf_invoice_id, processes, count)
            row = Row(
                name="pdf_pool",
                title=f"PDF render, {processes} processes",
                rps=round(count / seconds, 2),
                requests=count,
                errors=0,
                target="",
            )
            row.figure, row.unit = row.rps, "PDFs/s"
            row.extra = {"processes": processes, "seconds": round(seconds, 2)}
            self.add(row, server_memory=False)

    def memory(self) -> None:
        peak = self.server.peak_memory_mb()
        row = Row(
            name="worker_memory",
            title=f"gunicorn worker peak memory ({self.args.workers} workers)",
            peak_mb=peak,
            target=f"<= {WORKER_MEMORY_MB:.0f} MB",
        )
        row.figure, row.unit = peak, "MB VmHWM"
        row.met = peak is not None and peak <= WORKER_MEMORY_MB
        self.add(row)


def stored_since(max_id: int) -> int:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM usage_usagerecord WHERE id > %s", [max_id])
        return cur.fetchone()[0]


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def _render_one(invoice_id: int) -> int:
    from invoices.models import Invoice
    from invoices.pdf import invoice_pdf_bytes

    return len(invoice_pdf_bytes(Invoice.objects.get(pk=invoice_id)))


def render_pool(invoice_id: int, processes: int, count: int) -> float:
    """Seconds to render `count` PDFs on `processes` forked workers, after one warm render each."""
    import multiprocessing

    from django.db import connections

    # Forked children must open their own connections, never share the parent's socket.
    connections.close_all()
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        pool.map(_render_one, [invoice_id] * processes, chunksize=1)
        started = time.perf_counter()
        pool.map(_render_one, [invoice_id] * count, chunksize=1)
        return time.perf_counter() - started


def load_rated_data(scale: float, month: dt.date) -> dict:
    """Plans and metered usage for the rated billing run, loaded once per scale.

    The first RATED_ACCOUNTS x scale bench accounts subscribe from the first of
    `month` (a month with no pre-rated usage) to a plan in their currency: 100.00
    a month and graduated calls (0-1,000 free, then 0.01, above 10,000 0.005);
    RATED_RECORDS x scale metered records are spread over them and over the
    month's first 28 days, generated inside PostgreSQL.
    """
    from django.db import connection, transaction

    from accounts.models import Account
    from usage.models import Metric, Plan, Subscription, UsageRecord
    from usage.subscriptions import metric_create, plan_create

    accounts = max(int(RATED_ACCOUNTS * scale), 10)
    records = max(int(RATED_RECORDS * scale), 100)
    ids = list(
        Account.objects.billable()
        .filter(org_name__startswith="Customer ")
        .order_by("pk")
        .values_list("pk", flat=True)[:accounts]
    )
    subscribed = Subscription.objects.filter(plan__code__startswith=RATED_PLAN)
    metered = UsageRecord.objects.filter(metric=RATED_METRIC)
    if (
        subscribed.filter(start_date=month).count() == len(ids)
        and metered.of_month(month).count() == records
    ):
        return {"accounts": len(ids), "records": records, "loaded_now": False}
    say(f"  loading the rated data: {len(ids):,} subscriptions, {records:,} metered records")
    started = time.monotonic()
    if not Metric.objects.filter(code=RATED_METRIC).exists():
        metric_create(code=RATED_METRIC, name="API calls", unit="calls", aggregation="sum")
    tiers = [
        {"up_to": 1000, "unit_amount": "0"},
        {"up_to": 10000, "unit_amount": "0.01"},
        {"up_to": None, "unit_amount": "0.005"},
    ]
    plans = {}
    for currency in ("USD", "EUR"):
        code = f"{RATED_PLAN}-{currency.lower()}"
        plans[currency] = Plan.objects.filter(code=code).first() or plan_create(
            code=code,
            name="Bench Scale",
            currency=currency,
            amount=Decimal("100.00"),
            charges=[{"metric": RATED_METRIC, "model": "graduated", "tiers": tiers}],
        )
    currencies = dict(Account.objects.filter(pk__in=ids).values_list("pk", "currency"))
    with transaction.atomic():
        metered.delete()
        subscribed.delete()
        # Fixture data, loaded in bulk like bench/generate.py's (no account has a
        # subscription yet, so none can overlap).
        Subscription.objects.bulk_create(
            [
                Subscription(account_id=pk, plan=plans[currencies[pk]], start_date=month)
                for pk in ids
            ],
            batch_size=2000,
        )
        with connection.cursor() as cur:
            cur.execute(
                """
                INSERT INTO usage_usagerecord (account_id, client_id, resource_id, resource_name,
                    service, region, start_time, end_time, duration, cost, metric, quantity)
                SELECT (%(ids)s::bigint[])[j %% %(n)s + 1], 'rated-' || j, 'r-' || (j %% 7), '',
                    'API', 'global',
                    %(start)s::timestamptz + ((j / %(n)s) %% 28) * interval '1 day'
                        + (j %% 86400) * interval '1 second',
                    %(start)s::timestamptz + ((j / %(n)s) %% 28) * interval '1 day'
                        + (j %% 86400) * interval '1 second',
                    0, NULL, %(metric)s, (j %% 250) + 1
                FROM generate_series(0, %(records)s - 1) AS j
                """,
                {
                    "ids": ids,
                    "n": len(ids),
                    "start": dt.datetime.combine(month, dt.time(), tzinfo=dt.UTC),
                    "metric": RATED_METRIC,
                    "records": records,
                },
            )
    vacuum()
    say(f"  rated data loaded in {time.monotonic() - started:.1f} s")
    return {"accounts": len(ids), "records": records, "loaded_now": True}


def vacuum() -> None:
    """Clear the dead rows the ingestion and the billing run left, so the next run
    starts from the same state (autovacuum would get there, in its own time)."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "VACUUM (ANALYZE) usage_usagerecord, invoices_invoice, invoices_lineitem, "
            "invoices_invoiceevent"
        )


def _background(month: dt.date) -> str:
    return (
        "SELECT id FROM invoices_invoice WHERE creation_type = 'background' "
        f"AND period = '{month:%Y-%m-%d}'"
    )


def billing_run_counts(month: dt.date) -> tuple[int, int, int]:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM ({_background(month)}) AS b")
        invoices = cur.fetchone()[0]
        cur.execute(
            f"SELECT count(*) FROM invoices_lineitem WHERE invoice_id IN ({_background(month)})"
        )
        lines = cur.fetchone()[0]
        cur.execute(
            "SELECT count(*) FROM usage_usagerecord WHERE line_item_id IN "
            f"(SELECT id FROM invoices_lineitem WHERE invoice_id IN ({_background(month)}))"
        )
        records = cur.fetchone()[0]
    return invoices, lines, records


def undo_billing_run(month: dt.date) -> None:
    """Take back what a billing run of `month` made, so the benchmark can run again.

    Only the bench data's own background invoices exist for that month (the
    generator makes manual ones), so these are exactly the run's.
    """
    from django.db import connection, transaction

    background = _background(month)
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            "UPDATE usage_usagerecord SET line_item_id = NULL WHERE line_item_id IN "
            f"(SELECT id FROM invoices_lineitem WHERE invoice_id IN ({background}))"
        )
        # Messages the run's invoices caused (none today: the run's writes announce nothing).
        cur.execute(
            "DELETE FROM invoices_webhookattempt WHERE notification_id IN "
            f"(SELECT id FROM invoices_notification WHERE invoice_id IN ({background}))"
        )
        for table in (
            "invoices_notification",
            "invoices_hostedlink",
            "invoices_invoiceevent",
            "invoices_paymenttransaction",
            "invoices_lineitem",
        ):
            cur.execute(f"DELETE FROM {table} WHERE invoice_id IN ({background})")
        cur.execute(f"DELETE FROM invoices_invoice WHERE id IN ({background})")


# --- report ------------------------------------------------------------------------------


def machine() -> dict:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SHOW server_version")
        pg = cur.fetchone()[0]
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    total_kb = int(next(line for line in meminfo if line.startswith("MemTotal")).split()[1])
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": round(total_kb / 1024 / 1024, 1),
        "postgresql": pg,
        "python": platform.python_version(),
        "os": platform.platform(),
        "wrk": (
            subprocess.run(["wrk", "-v"], capture_output=True, text=True)
            .stdout.split("[")[0]
            .strip()
            if wrk.wrk_available()
            else None
        ),
    }


def data_counts() -> dict:
    from django.db import connection

    counts = {}
    with connection.cursor() as cur:
        for name, table in (
            ("accounts", "accounts_account"),
            ("invoices", "invoices_invoice"),
            ("line_items", "invoices_lineitem"),
            ("payment_transactions", "invoices_paymenttransaction"),
            ("usage_records", "usage_usagerecord"),
        ):
            cur.execute(f"SELECT count(*) FROM {table}")
            counts[name] = cur.fetchone()[0]
    return counts


def free_port(preferred: int) -> int:
    """`preferred` if nothing listens there (another run on the same machine), else any free port."""
    import socket

    for port in (preferred, 0):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise RuntimeError("no free port on 127.0.0.1")


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def fmt(value, spec: str = ",.1f") -> str:
    if value is None:
        return "-"
    return format(value, spec)


def ratio_text(row: Row) -> str:
    return "-" if row.ratio is None else f"{row.ratio:.1%}"


def print_table(rows: list[Row]) -> None:
    header = (
        f"{'benchmark':<50} {'req/s':>9} {'/healthz':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'err':>5} {'SQL':>5} {'bytes':>9} {'peak MB':>8}  {'figure':>20}  {'target':<36} result"
    )
    say("\n" + header)
    say("-" * len(header))
    for row in rows:
        figure = f"{fmt(row.figure)} {row.unit}" if row.figure is not None else row.status
        result = {True: "met", False: "MISSED", None: ""}[row.met]
        if row.status != "ok":
            result = f"{row.status}: {row.note}"
        say(
            f"{row.title:<50} {fmt(row.rps):>9} {ratio_text(row):>9} "
            f"{fmt(row.p50_ms, '.2f'):>8} {fmt(row.p99_ms, '.2f'):>8} "
            f"{fmt(row.errors, 'd'):>5} {fmt(row.queries, 'd'):>5} {fmt(row.bytes, ',d'):>9} "
            f"{fmt(row.peak_mb):>8}  {figure:>20}  {row.target:<36} {result}"
        )
    say("/healthz: each row's req/s as a share of /healthz's req/s in this run.")


def markdown_table(rows: list[Row]) -> str:
    """The table as Markdown, for docs/benchmarks.md."""
    lines = [
        "| benchmark | req/s | share of /healthz | p50 ms | p99 ms | errors | SQL/req | bytes "
        "| worker peak MB | figure | target | result |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|---|",
    ]
    for row in rows:
        figure = f"{fmt(row.figure)} {row.unit}" if row.figure is not None else ""
        result = {True: "met", False: "**missed**", None: ""}[row.met]
        if row.status != "ok":
            result = f"{row.status}: {row.note}"
        lines.append(
            f"| {row.title.replace('|', '/')} | {fmt(row.rps)} | {ratio_text(row)} "
            f"| {fmt(row.p50_ms, '.1f')} "
            f"| {fmt(row.p99_ms, '.1f')} | {fmt(row.errors, 'd')} | {fmt(row.queries, 'd')} "
            f"| {fmt(row.bytes, ',d')} | {fmt(row.peak_mb)} | {figure} | {row.target} | {result} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scale", type=float, default=1.0, help="data size: 1 = full, 0.001 = smoke"
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per endpoint")
    parser.add_argument(
        "--warmup",
        type=int,
        default=None,
        help="seconds of warm-up load (default 2; 0 below 5 s runs)",
    )
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--workers", type=int, default=2 * (os.cpu_count() or 1), help="gunicorn workers"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help="gunicorn's port (default 8050, or a free one if 8050 is taken)",
    )
    parser.add_argument("--output", type=Path, default=ROOT / "bench-results" / "results.json")
    parser.add_argument(
        "--only",
        type=lambda s: [p for p in s.split(",") if p],
        default=[],
        help="comma-separated row names (prefixes) to run, e.g. api_invoices,healthz",
    )
    args = parser.parse_args()
    if args.warmup is None:
        args.warmup = 2 if args.duration >= 5 else 0
    if args.port is None:
        args.port = free_port(8050)
    # The billing runs alone need neither the server nor wrk.
    offline = bool(args.only) and all(name in OFFLINE_ROWS for name in args.only)
    if not offline and not wrk.wrk_available():
        say("bench/run.py needs wrk (apt-get install wrk)", stream=sys.stderr)
        return 2
    database_url = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    if not database_url.startswith(("postgres://", "postgresql://")):
        say("bench/run.py needs PostgreSQL: set DATABASE_URL=postgres://...", stream=sys.stderr)
        return 2
    database_name = urllib.parse.urlsplit(database_url).path.lstrip("/")
    if "bench" not in database_name:
        # Loading the data empties the database: never let a stray DATABASE_URL
        # pointing at real or test data be taken for the benchmark's.
        say(
            f"Refusing to use database {database_name!r}: loading empties it, so its name "
            "must contain 'bench' (e.g. .../bench).",
            stream=sys.stderr,
        )
        return 2

    started_at = dt.datetime.now(dt.UTC)
    load_before = load_average()
    env = production_env(database_url, work_dir=args.output.parent)
    ensure_database(database_url)
    say(f"Data at scale {args.scale} in {database_name}:")
    loading = load_data(env, args.scale)
    setup_django({**env, "ALLOWED_HOSTS": "127.0.0.1,testserver"})
    fixture = make_fixture()
    counts = data_counts()
    say(
        f"Serving with gunicorn, {args.workers} workers, on port {args.port}; "
        f"wrk -c{args.connections} -d{args.duration}s after {args.warmup} s of warm-up"
    )

    server = Gunicorn(
        env, port=args.port, workers=args.workers, log_path=args.output.parent / "gunicorn.log"
    )
    bench = Bench(args, server, fixture)
    if not offline:
        with server:
            bench.reads()
            bench.stored_pdf()
            bench.ingest()
            bench.memory()
    bench.pdf()
    bench.billing_run(env)
    bench.rated_billing_run(env)
    bench.delivery(env)
    rows = bench.rows
    print_table(rows)

    results = {
        "started_at": started_at.isoformat(timespec="seconds"),
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "machine": machine(),
        "settings": {
            "scale": args.scale,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "connections": args.connections,
            "wrk_threads": 2,
            "gunicorn_workers": args.workers,
            "deep_page": fixture.deep_page,
            "list_month": fixture.list_month,
            "billing_month": f"{fixture.billing_month:%Y-%m}",
            "rated_month": f"{fixture.rated_month:%Y-%m}",
        },
        "data": {**counts, "loading": loading},
        "rows": [asdict(row) for row in rows],
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    args.output.with_suffix(".md").write_text(markdown_table(rows))
    say(
        f"\nWrote {args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
