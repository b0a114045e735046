"""The app under gunicorn, started the way the README tells production users to run it."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def production_env(database_url: str, *, work_dir: Path) -> dict[str, str]:
    """Production settings, less TLS: the load runs over plain HTTP on loopback.

    Stored PDFs and static files go under `work_dir`, away from a developer's var/.
    """
    (work_dir / "static").mkdir(parents=True, exist_ok=True)
    return {
        "DEBUG": "0",
        "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(48),
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": database_url,
        "CONN_MAX_AGE": "600",
        "SECURE_SSL_REDIRECT": "0",
        "STATIC_MANIFEST": "0",
        "MEDIA_ROOT": str(work_dir / "media"),
        "STATIC_ROOT": str(work_dir / "static"),
        "LOG_LEVEL": "WARNING",
        # The benchmark's own issued invoices send their e-mails nowhere (not to stdout).
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "DJANGO_SETTINGS_MODULE": "billing.settings",
    }


class Gunicorn:
    """`gunicorn billing.wsgi --workers N` on 127.0.0.1:port, stopped by its own pid."""

    def __init__(self, env: dict[str, str], *, port: int, workers: int, log_path: Path) -> None:
        self.env = {**os.environ, **env}
        self.port = port
        self.workers = workers
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Gunicorn:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "billing.wsgi",
                "--workers",
                str(self.workers),
                "--bind",
                f"127.0.0.1:{self.port}",
                # A 5,000-record ingestion batch or a deep page must not be
                # killed as a hung worker on a loaded two-core machine.
                "--timeout",
                "120",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready()
        return self

    def _wait_ready(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited at start-up; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/healthz", timeout=2) as response:
                    if response.status == 200 and len(self.worker_pids()) >= self.workers:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer /healthz within {timeout_s:.0f} s")

    def __exit__(self, *exc) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def worker_pids(self) -> list[int]:
        master = self.process.pid
        children = Path(f"/proc/{master}/task/{master}/children")
        try:
            return [int(pid) for pid in children.read_text().split()]
        except OSError:
            return []

    def peak_memory_mb(self) -> float | None:
        """The largest VmHWM (peak resident set) among the workers, in MiB."""
        peaks = []
        for pid in self.worker_pids():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) / 1024)
        return round(max(peaks), 1) if peaks else None
