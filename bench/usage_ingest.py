"""End-to-end ingestion rate of POST /v1/usage over HTTP, against gunicorn.

Starts gunicorn on --port with the database of DATABASE_URL (PostgreSQL),
creates a benchmark account and a key limited to it, pre-builds the request
bodies (--batch records each, unique ids), then posts them from --clients
concurrent keep-alive connections and prints records per second.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/usage_scratch \
        python bench/usage_ingest.py --records 200000 --batch 5000 --port 8030
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import os
import queue
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing.settings")
os.environ.setdefault("DEBUG", "1")


def _setup() -> tuple[int, str]:
    import django

    django.setup()
    from django.core.management import call_command

    from accounts.models import Account
    from accounts.services import api_key_create

    call_command("migrate", verbosity=0)
    account, _ = Account.objects.get_or_create(org_name="Ingestion benchmark")
    _, secret = api_key_create(name="ingestion benchmark", scope="write", account=account)
    return account.pk, secret


def _bodies(records: int, batch: int) -> list[bytes]:
    run = secrets.token_hex(4)
    bodies = []
    for start in range(0, records, batch):
        rows = [
            {
                "id": f"{run}-{n}",
                "resource_id": f"i-{n % 997:08x}",
                "resource_name": f"web-{n % 13}",
                "service": ("EC2", "RDS", "S3", "Lambda")[n % 4],
                "region": ("us-west-1", "us-east-1", "eu-west-1")[n % 3],
                "start_time": f"2026-01-{1 + n % 28:02d}T{n % 24:02d}:00:00Z",
                "end_time": f"2026-01-{1 + n % 28:02d}T{n % 24:02d}:30:00Z",
                "cost": f"0.{n % 1000:03d}125",
            }
            for n in range(start, min(start + batch, records))
        ]
        bodies.append(orjson.dumps(rows))
    return bodies


def spread_bodies(
    records: int, batch: int, account_ids: list[int], *, tag: str, now: dt.datetime
) -> list[bytes]:
    """Bodies for a provider-wide key: records spread over `account_ids`, each
    starting in the hour before `now` (the current month's partition)."""
    bodies = []
    base = now - dt.timedelta(hours=1)
    for first in range(0, records, batch):
        rows = []
        for n in range(first, min(first + batch, records)):
            start = base + dt.timedelta(seconds=n % 3000)
            rows.append(
                {
                    "id": f"{tag}-{n}",
                    "account_id": account_ids[n % len(account_ids)],
                    "resource_id": f"i-{n % 5000:08x}",
                    "resource_name": f"server-{n % 50}",
                    "service": ("EC2", "RDS", "S3", "Lambda", "EKS")[n % 5],
                    "region": ("us-west-1", "us-east-1", "eu-west-1")[n % 3],
                    "start_time": start.isoformat().replace("+00:00", "Z"),
                    "end_time": (start + dt.timedelta(seconds=600))
                    .isoformat()
                    .replace("+00:00", "Z"),
                    "cost": f"0.{n % 1000:03d}125",
                }
            )
        bodies.append(orjson.dumps(rows))
    return bodies


def post_bodies(port: int, secret: str, bodies: list[bytes], clients: int) -> tuple[int, float]:
    """POST every body from `clients` keep-alive connections; (records stored, seconds).
    Any answer other than 201 stops the benchmark."""
    work: queue.Queue[bytes] = queue.Queue()
    for body in bodies:
        work.put(body)
    stored = [0]
    failures: list[str] = []
    lock = threading.Lock()
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        while True:
            try:
                body = work.get_nowait()
            except queue.Empty:
                return
            conn.request("POST", "/v1/usage", body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            with lock:
                if response.status != 201:
                    failures.append(f"{response.status}: {payload[:200]!r}")
                else:
                    stored[0] += orjson.loads(payload)["stored"]

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise SystemExit(f"{len(failures)} failed requests, first: {failures[0]}")
    return stored[0], elapsed


def _proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _server_cpu(server_pid: int) -> dict[int, float]:
    """CPU seconds of the gunicorn workers and of the PostgreSQL backends serving this database."""
    from django.db import connection

    children = Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
        backends = [row[0] for row in cursor.fetchall()]
    return {pid: _proc_cpu(pid) for pid in [server_pid, *map(int, children), *backends]}


def _wait_for(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/v1/usage")
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not start")


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--port", type=int, default=8030)
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        raise SystemExit("Set DATABASE_URL to a PostgreSQL database.")

    _, secret = _setup()
    bodies = _bodies(args.records, args.batch)
    env = {**os.environ, "DEBUG": "1", "LOG_LEVEL": "ERROR", "MAX_REQUEST_BYTES": "67108864"}
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "billing.wsgi", "--workers", str(args.workers),
         "--bind", f"127.0.0.1:{args.port}", "--log-level", "warning"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    try:
        _wait_for(args.port)
        work: queue.Queue[bytes] = queue.Queue()
        for body in bodies:
            work.put(body)
        stored = [0]
        failures: list[str] = []
        lock = threading.Lock()
        headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}

        def client() -> None:
            conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=120)
            while True:
                try:
                    body = work.get_nowait()
                except queue.Empty:
                    return
                conn.request("POST", "/v1/usage", body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                with lock:
                    if response.status != 201:
                        failures.append(f"{response.status}: {payload[:200]!r}")
                    else:
                        stored[0] += orjson.loads(payload)["stored"]

        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        cpu_before = _server_cpu(server.pid)
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        cpu_after = _server_cpu(server.pid)
        cpu = sum(after - cpu_before.get(pid, 0.0) for pid, after in cpu_after.items())
    finally:
        server.terminate()
        server.wait(timeout=30)
    if failures:
        raise SystemExit(f"{len(failures)} failed requests, first: {failures[0]}")
    say(
        f"{stored[0]} records in {len(bodies)} requests of {args.batch} "
        f"over {args.clients} connections: {elapsed:.2f} s, "
        f"{stored[0] / elapsed:,.0f} records/s (load average {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} CPUs)"
    )
    say(
        f"server CPU (gunicorn workers + database backends): {cpu:.1f} s, "
        f"{stored[0] / cpu:,.0f} records per CPU-second; "
        f"ceiling on {os.cpu_count()} otherwise idle CPUs: "
        f"{stored[0] / cpu * (os.cpu_count() or 1):,.0f} records/s"
    )


if __name__ == "__main__":
    main()
