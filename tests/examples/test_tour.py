"""examples/tour.sh, the README's examples, against a live server on a fresh database."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "tour.sh"
README = ROOT / "README.md"


def _sections(text: str) -> dict[str, str]:
    """The script's `# == name ==` ... `# == end ==` sections."""
    found = re.findall(r"^# == (\w+) ==\n(.*?)^# == end ==$", text, flags=re.M | re.S)
    return {name: body.strip() for name, body in found}


def test_readme_shows_the_script_sections_verbatim():
    sections = _sections(SCRIPT.read_text())
    assert set(sections) == {"api", "v1", "usage", "pricing"}
    readme = README.read_text()
    for name, body in sections.items():
        marker = f"<!-- examples/tour.sh: {name} -->\n```sh\n"
        assert marker in readme, f"README lacks the {name} section of examples/tour.sh"
        shown = readme.split(marker, 1)[1].split("\n```", 1)[0]
        assert shown.strip() == body, f"README's {name} section differs from examples/tour.sh"


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_"))}
    env.update(
        DEBUG="1",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        MEDIA_ROOT=str(tmp_path / "media"),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        PYTHON=sys.executable,
    )
    env.pop("CELERY_BROKER_URL", None)
    return env


def _manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("curl") is None, reason="the tour uses curl")
def test_tour_runs_in_order_against_fresh_demo_data(tmp_path):
    env = _env(tmp_path)
    _manage(env, "migrate", "--noinput", "-v", "0")
    seeded = _manage(env, "seed_demo", "--usage-per-account", "20")
    key = re.search(r"API key: (bk_\S+)", seeded).group(1)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        done = subprocess.run(
            ["bash", str(SCRIPT)],
            cwd=ROOT, env={**env, "KEY": key, "B": base}, capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.rstrip().endswith("tour complete")
    curl_steps = len(re.findall(r"^step [\d,]+ ", SCRIPT.read_text(), flags=re.M))
    assert len(re.findall(r"^ok \d{3} ", done.stdout, flags=re.M)) == curl_steps
    assert key not in done.stdout  # the script prints $KEY, never the key
