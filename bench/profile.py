"""Time and profile endpoints in-process, against the benchmark database.

Runs each request through Django's full stack (middleware, authentication,
rendering) as gunicorn would: first `--repeat` timed requests without a
profiler (median and mean per request), then, with `--profile`, the same
under pyinstrument to show where the time went. `{key}` in a path stands for
a fresh provider-wide key, `{id}` for a paid invoice from the middle of the
table. `--middleware` also times each path with the middleware list the
project had before API requests stepped around the browser's middlewares,
and with no optional middleware at all, to show what the stack costs.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench \\
        python bench/profile.py /healthz '/api/invoices/{id}.xml?access_token={key}' \\
        /v1/invoices/{id} --bearer --middleware
    python bench/profile.py '/api/invoices.json?access_token={key}' --repeat 200 --profile
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.run import BENCH_KEY_NAME, DEFAULT_DATABASE_URL, say  # noqa: E402
from bench.server import production_env  # noqa: E402

# MIDDLEWARE as it was before the browser's middlewares stepped aside on API requests.
FULL_STACK = [
    "django.middleware.security.SecurityMiddleware",
    "billing.api.errors.DatabaseUnavailableMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "billing.api.body.RequestBodyLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
# What no request can do without: headers, the 503, the body limits.
BARE = [
    "django.middleware.security.SecurityMiddleware",
    "billing.api.errors.DatabaseUnavailableMiddleware",
    "billing.api.body.RequestBodyLimitMiddleware",
]


def time_requests(path: str, headers: dict[str, str], repeat: int) -> tuple[float, float]:
    """Median wall-clock and CPU milliseconds per request, after a warm-up, with a fresh
    handler. CPU time (this process only: not PostgreSQL's, not other jobs') is the
    steadier figure on a shared machine."""
    from django.test import Client

    client = Client()
    for _ in range(max(5, repeat // 10)):
        client.get(path, headers=headers)
    wall, cpu = [], []
    for _ in range(repeat):
        started, started_cpu = time.perf_counter(), time.process_time()
        client.get(path, headers=headers)
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
    return statistics.median(wall), statistics.fmean(cpu)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", help="paths and queries; {key} and {id} are replaced")
    parser.add_argument(
        "--bearer", action="store_true", help="send the key as a Bearer header to /v1 paths"
    )
    parser.add_argument("--repeat", type=int, default=300)
    parser.add_argument("--profile", action="store_true", help="also profile with pyinstrument")
    parser.add_argument(
        "--middleware", action="store_true", help="also time the old and the bare stacks"
    )
    parser.add_argument("--html", type=Path, help="write pyinstrument's HTML report here")
    args = parser.parse_args()

    database_url = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    env = production_env(database_url, work_dir=ROOT / "bench-results")
    os.environ.update({**env, "ALLOWED_HOSTS": "testserver"})
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test import Client, override_settings

    from accounts.services import api_key_create

    _, secret = api_key_create(name=BENCH_KEY_NAME, scope="read")
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM invoices_invoice")
        middle = cur.fetchone()[0] // 2
        cur.execute(
            "SELECT id FROM invoices_invoice WHERE state = 'paid' AND id >= %s ORDER BY id LIMIT 1",
            [middle],
        )
        row = cur.fetchone()
    invoice_id = str(row[0]) if row else "1"
    say(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    stacks = {"current": list(settings.MIDDLEWARE)}
    if args.middleware:
        stacks.update({"before": FULL_STACK, "bare": BARE})
    for raw_path in args.paths:
        path = raw_path.replace("{key}", secret).replace("{id}", invoice_id)
        bearer = args.bearer and path.startswith("/v1/")
        headers = {"authorization": f"Bearer {secret}"} if bearer else {}
        response = Client().get(path, headers=headers)
        shown = raw_path.split("?")[0].replace("{id}", invoice_id)
        say(f"\n{shown}: HTTP {response.status_code}, {len(response.content):,} bytes")
        # Interleaved rounds, the best of three for each stack: drift on a shared
        # machine hits every stack alike.
        best: dict[str, tuple[float, float]] = {}
        for _ in range(3):
            for name, middleware in stacks.items():
                with override_settings(MIDDLEWARE=middleware):
                    wall, cpu = time_requests(path, headers, args.repeat)
                previous = best.get(name, (wall, cpu))
                best[name] = (min(previous[0], wall), min(previous[1], cpu))
        for name, (wall, cpu) in best.items():
            say(
                f"  {name:<8} middleware ({len(stacks[name]):>2}): {wall:7.3f} ms wall median, "
                f"{cpu:7.3f} ms CPU mean per request (best of 3 x {args.repeat})"
            )
        if args.profile:
            from pyinstrument import Profiler

            client = Client()
            profiler = Profiler(interval=0.0005)
            with profiler:
                for _ in range(args.repeat):
                    client.get(path, headers=headers)
            say(profiler.output_text(unicode=True, color=False, show_all=False))
            if args.html:
                args.html.write_text(profiler.output_html())
    say(f"\nload average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
