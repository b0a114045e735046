"""Real processes for worker tests: a Celery worker (`celery -A billing worker`) and the
API server (gunicorn), both on this test's PostgreSQL database and a Redis broker,
with the test's own queue (tests/support/worker_settings.py).

Each runs in its own process group, so `kill9()` takes the whole of it at once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import redis
import requests

from tests.support.billing_run import database_url
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
# Its own database number: the queues and results of these tests stay apart from the
# other Redis users (tests/usage/test_worker.py uses 5); the queue name is per run.
BROKER = "redis://127.0.0.1:6379/7"


def redis_up() -> bool:
    try:
        return bool(redis.Redis.from_url(BROKER, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


class Broker:
    """The test's queue on the broker: what waits in it, what a worker holds unacked."""

    def __init__(self) -> None:
        self.queue = f"test-delivery-{uuid.uuid4().hex}"
        self.client = redis.Redis.from_url(BROKER)

    def env(self, tmp_path: Path, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.support.worker_settings",
            "TEST_CELERY_BROKER_URL": BROKER,
            "TEST_CELERY_QUEUE": self.queue,
            "DATABASE_URL": database_url(),
            "CONN_MAX_AGE": "0",
            "MEDIA_ROOT": str(tmp_path / "media"),
            "LOG_LEVEL": "WARNING",
            **extra,
        }

    def unacked(self) -> list[dict]:
        """The messages of this queue that a worker took and has not acknowledged:
        each `{"id", "task", "args"}`."""
        held = []
        for raw in self.client.hvals("unacked"):
            message, _exchange, routing_key = json.loads(raw)
            if routing_key == self.queue:
                headers = message["headers"]
                held.append(
                    {"id": headers["id"], "task": headers["task"], "args": headers["argsrepr"]}
                )
        return held

    def waiting(self) -> int:
        return int(self.client.llen(self.queue))

    def drained(self) -> bool:
        return self.waiting() == 0 and not self.unacked()

    def wait_until(self, predicate, timeout: float, what: str) -> None:
        """Poll the broker (or the database) until `predicate()`; these are state
        changes in other processes, with no event to subscribe to."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: not within {timeout} s")
            time.sleep(0.05)

    def close(self) -> None:
        self.client.delete(self.queue)
        for key, raw in self.client.hgetall("unacked").items():
            if json.loads(raw)[2] == self.queue:
                self.client.hdel("unacked", key)
                self.client.zrem("unacked_index", key)
        self.client.close()


class Process:
    """A child process in its own process group, its output kept in a log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> Process:
        log = self.log_path.open("a")
        self.process = subprocess.Popen(
            self.args,
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return self

    @property
    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def kill9(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill9()


def celery_worker(broker: Broker, tmp_path: Path, name: str = "worker", **env: str) -> Process:
    """`celery -A billing worker` on the test's queue, one task at a time (solo pool:
    the task runs in the process that a SIGKILL ends)."""
    args = [
        sys.executable, "-m", "celery", "-A", "billing", "worker", "--pool=solo",
        "-Q", broker.queue, "-n", f"{name}-{broker.queue}@%h",
        "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "info",
    ]  # fmt: skip
    return Process(name, args, broker.env(tmp_path, **env), tmp_path).start()


def api_server(broker: Broker, tmp_path: Path, **env: str) -> tuple[Process, str]:
    """gunicorn serving the project (one worker) on a free port; its base URL once it answers."""
    port = free_port()
    args = [
        sys.executable, "-m", "gunicorn", "billing.wsgi", "--bind", f"127.0.0.1:{port}",
        "--workers", "1", "--timeout", "60",
    ]  # fmt: skip
    server = Process("api", args, broker.env(tmp_path, **env), tmp_path).start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        # Readiness: nothing to wait on but the port answering.
        try:
            if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                return server, base
        except requests.RequestException:
            pass
        if time.monotonic() > deadline or (server.process and server.process.poll() is not None):
            server.stop()
            raise RuntimeError(f"the API server did not start:\n{server.log}")
        time.sleep(0.1)
