"""Profile one endpoint in-process with pyinstrument, against the benchmark database.

Runs the request through Django's full stack (middleware, authentication,
rendering) as gunicorn would, `--repeat` times after a warm-up, and prints
where the time went. `{key}` in the path stands for a fresh provider-wide key.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench \\
        python bench/profile.py '/api/invoices.json?access_token={key}' --repeat 200
    python bench/profile.py /v1/invoices --bearer --repeat 100
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.run import BENCH_KEY_NAME, DEFAULT_DATABASE_URL, say  # noqa: E402
from bench.server import production_env  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", help="path and query; {key} is replaced by an API key")
    parser.add_argument("--bearer", action="store_true", help="send the key as a Bearer header")
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument("--html", type=Path, help="also write pyinstrument's HTML report here")
    args = parser.parse_args()

    from pyinstrument import Profiler

    database_url = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    env = production_env(database_url, work_dir=ROOT / "bench-results")
    os.environ.update({**env, "ALLOWED_HOSTS": "testserver"})
    import django

    django.setup()
    from django.test import Client

    from accounts.services import api_key_create

    _, secret = api_key_create(name=BENCH_KEY_NAME, scope="read")
    path = args.path.replace("{key}", secret)
    headers = {"authorization": f"Bearer {secret}"} if args.bearer else {}
    client = Client()
    response = client.get(path, headers=headers)
    say(f"{path.split('?')[0]}: HTTP {response.status_code}, {len(response.content):,} bytes")
    profiler = Profiler(interval=0.0005)
    started = time.perf_counter()
    with profiler:
        for _ in range(args.repeat):
            client.get(path, headers=headers)
    elapsed = time.perf_counter() - started
    say(f"{args.repeat} requests, {elapsed / args.repeat * 1000:.2f} ms each in-process\n")
    say(profiler.output_text(unicode=True, color=False, show_all=False))
    if args.html:
        args.html.write_text(profiler.output_html())
    return 0


if __name__ == "__main__":
    sys.exit(main())
