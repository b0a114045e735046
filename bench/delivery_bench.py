"""Measure delivery: webhooks delivered per second to a local receiver, and the
outbox's lag while the invoices of a 10,000-account billing run are issued.

1. Throughput: N webhook rows in the outbox, W sender threads (the Celery workers'
   `notification_send`: claim, sign, POST, mark) delivering them to an HTTP receiver
   on 127.0.0.1; webhooks per second.
2. Lag: a billing run's bulk write puts one line on a background invoice for each of
   M new accounts (`invoices_upsert_background_lines`), the invoices are finalized, then
   issued by I issuer threads, each running the issue job's loop (`jobs._run`: claim the
   invoice under a row lock, skipping locked ones, re-check, `invoice_issue`, which
   writes the invoice's outbox rows in its transaction) over its share of the invoices,
   as I Celery workers would, with one webhook endpoint subscribed to every event;
   meanwhile W sender threads drain the outbox (the after-commit task is replaced by
   the workers' polling, as with a broker). Lag = `sent_at - created_at` of each
   message (p50, p99, max); e-mails use the in-memory backend, so the figure is the
   outbox's, not an SMTP server's.

Everything it creates (accounts whose name starts with "delivery-bench", their
invoices and messages, the endpoint) is deleted at the end. Figures, never assertions.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench python bench/delivery_bench.py
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing.settings")
os.environ.setdefault("DEBUG", "1")
os.environ["WEBHOOKS_ALLOW_PRIVATE_TARGETS"] = "1"
os.environ["EMAIL_BACKEND"] = "django.core.mail.backends.locmem.EmailBackend"
os.environ.pop("CELERY_BROKER_URL", None)
os.environ["LOG_LEVEL"] = "WARNING"

PREFIX = "delivery-bench"


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct))] if ordered else 0.0


def _drain(workers: int, producing: threading.Event, sent_counter: list[int]) -> float:
    """W threads send every due pending row (partitioned by id) until production has
    stopped and nothing is left; seconds taken."""
    from django.db import connections
    from django.db.models import F
    from django.db.models.functions import Mod

    from invoices.delivery import outbox
    from invoices.models import Notification

    def worker(bucket: int) -> None:
        try:
            while True:
                due = list(
                    Notification.objects.filter(state=Notification.State.PENDING)
                    .annotate(bucket=Mod(F("id"), workers))
                    .filter(bucket=bucket)
                    .order_by("id")
                    .values_list("pk", flat=True)[:200]
                )
                if not due:
                    if not producing.is_set():
                        return
                    time.sleep(0.05)
                    continue
                for pk in due:
                    if outbox.notification_send(pk) == "sent":
                        sent_counter[bucket] += 1
        finally:
            connections.close_all()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def throughput(count: int, workers: int, url: str) -> dict:
    from django.utils import timezone

    from invoices.delivery.outbox import webhook_body
    from invoices.models import Notification, WebhookEndpoint

    endpoint = WebhookEndpoint.objects.create(url=url, events=["*"], description=PREFIX)
    now = timezone.now()
    body = webhook_body(
        event_id="evt_bench", event_type="webhook.test", created_at=now, data={"pad": "x" * 900}
    )
    Notification.objects.bulk_create(
        Notification(
            channel=Notification.Channel.WEBHOOK,
            topic="webhook.test",
            endpoint=endpoint,
            recipient=url,
            body=body,
            next_attempt_at=now,
            created_at=now,
        )
        for _ in range(count)
    )
    producing = threading.Event()
    sent = [0] * workers
    seconds = _drain(workers, producing, sent)
    endpoint.delete()
    return {
        "webhooks": sum(sent),
        "seconds": round(seconds, 2),
        "per_second": round(sum(sent) / seconds, 1),
    }


def _in_threads(count: int, work) -> None:
    """Run `work(share, count)` in `count` threads, each with its own connection."""
    from django.db import connections

    errors: list[BaseException] = []

    def run(share: int) -> None:
        try:
            work(share, count)
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(share,)) for share in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def _share(queryset, share: int, count: int):
    from django.db.models import F
    from django.db.models.functions import Mod

    return queryset.annotate(share=Mod(F("id"), count)).filter(share=share)


def lag(accounts: int, workers: int, url: str, issuers: int = 4) -> dict:
    from django.db.models import Max, Min
    from django.utils import timezone

    from accounts.models import Account
    from billing.lib.months import add_months, month_start
    from invoices import jobs, selectors, services
    from invoices.delivery import outbox
    from invoices.models import Invoice, LineItem, Notification, WebhookEndpoint

    endpoint = WebhookEndpoint.objects.create(url=url, events=["*"], description=PREFIX)
    Account.objects.bulk_create(
        Account(org_name=f"{PREFIX} {i}", billing_email=f"bench{i}@example.test", currency="USD")
        for i in range(accounts)
    )
    ids = list(Account.objects.filter(org_name__startswith=PREFIX).values_list("pk", flat=True))
    period = add_months(month_start(timezone.now().date()), -2)
    spec = services.LineSpec(
        name="Usage",
        quantity=Decimal("3"),
        unit_price=Decimal("12.50"),
        type=LineItem.Type.USAGE,
        source="usage:bench",
    )
    t0 = time.perf_counter()
    services.invoices_upsert_background_lines(
        period=period, lines_by_account={pk: [spec] for pk in ids}, actor="bench"
    )
    run_seconds = time.perf_counter() - t0
    # The workers poll instead of an after-commit task per row (a broker's queue); the
    # finalize events are not timed (deleted below), so nothing sends them meanwhile.
    outbox.send_after_commit = lambda ids: None
    finalized_at = timezone.now() - dt.timedelta(days=3)
    # The run's invoices by id range: a 10,000-id IN list in every claim of the job's
    # loop would cost more than the claim itself.
    bounds = Invoice.objects.filter(account_id__in=ids).aggregate(lo=Min("id"), hi=Max("id"))
    ours = Invoice.objects.filter(pk__gte=bounds["lo"], pk__lte=bounds["hi"])
    open_invoices = ours.filter(state=Invoice.State.OPEN)

    def finalize(share: int, count: int) -> None:
        for invoice in _share(open_invoices, share, count).select_related("account"):
            services.invoice_finalize(invoice=invoice, actor="bench", now=finalized_at)

    t0 = time.perf_counter()
    _in_threads(issuers, finalize)
    finalize_seconds = time.perf_counter() - t0
    Notification.objects.filter(endpoint=endpoint).delete()  # the finalize events: not timed

    # The PDF is rendered by its own task (bench/pdf_bench.py times it); here the
    # issue e-mail attaches a fixed document, so the figure is the outbox's.
    from invoices import tasks
    from invoices.delivery import email
    from invoices.signals import invoice_issued

    invoice_issued.disconnect(dispatch_uid="invoices.tasks.render_after_issue")
    email._pdf = lambda invoice: b"%PDF-1.7 bench"
    assert tasks  # the receiver above lives there

    producing = threading.Event()
    producing.set()
    sent = [0] * workers
    drained: dict = {}
    drainer = threading.Thread(
        target=lambda: drained.setdefault("seconds", _drain(workers, producing, sent))
    )
    drainer.start()
    now = timezone.now()
    to_issue = selectors.invoice_list_to_issue(now, grace=jobs.ISSUE_GRACE).filter(
        pk__gte=bounds["lo"], pk__lte=bounds["hi"]
    )
    results: list = []

    def issue(share: int, count: int) -> None:
        # The issue job's own loop over this issuer's share of the invoices.
        results.append(
            jobs._run(
                _share(to_issue, share, count),
                # Stamped with its own time, not the job's start (`jobs.invoices_issue`
                # passes its `now`): the rows' `created_at` is where the lag starts.
                lambda invoice: services.invoice_issue(invoice=invoice, actor=jobs.ACTOR_ISSUE),
                dry_run=False,
                progress=None,
            )
        )

    t0 = time.perf_counter()
    _in_threads(issuers, issue)
    issue_seconds = time.perf_counter() - t0
    issued = sum(result.done for result in results)
    producing.clear()
    drainer.join()
    total_seconds = time.perf_counter() - t0
    rows = Notification.objects.filter(invoice__account_id__in=ids, state="sent")
    lags = [(s - c).total_seconds() for c, s in rows.values_list("created_at", "sent_at")]
    result = {
        "accounts": accounts,
        "billing_run_write_s": round(run_seconds, 2),
        "finalize_s": round(finalize_seconds, 2),
        "issuers": issuers,
        "issued": issued,
        "issue_s": round(issue_seconds, 2),
        "issued_per_s": round(issued / issue_seconds, 1) if issue_seconds else 0.0,
        "messages": len(lags),
        "drained_after_s": round(total_seconds, 2),
        "lag_p50_s": round(_percentile(lags, 0.5), 3),
        "lag_p99_s": round(_percentile(lags, 0.99), 3),
        "lag_max_s": round(max(lags, default=0.0), 3),
        "lag_mean_s": round(statistics.fmean(lags), 3) if lags else 0.0,
    }
    # Clean up: everything this run made.
    Invoice.objects.filter(account_id__in=ids).delete()
    Account.objects.filter(pk__in=ids).delete()
    endpoint.delete()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--webhooks", type=int, default=2000, help="rows for the throughput")
    parser.add_argument("--accounts", type=int, default=10_000, help="invoices issued for the lag")
    parser.add_argument("--workers", type=int, default=4, help="sender threads")
    parser.add_argument("--issuers", type=int, default=4, help="issue-job threads")
    parser.add_argument("--skip-throughput", action="store_true", help="measure the lag only")
    parser.add_argument("--output", type=Path, default=None, help="write the figures as JSON")
    args = parser.parse_args()

    import django

    django.setup()
    from tests.support.receivers import WebhookReceiver

    with WebhookReceiver(status=204) as receiver:
        figures = {
            "throughput": None
            if args.skip_throughput
            else throughput(args.webhooks, args.workers, receiver.url),
            "lag": lag(args.accounts, args.workers, receiver.url, args.issuers),
            "workers": args.workers,
            "received": len(receiver.requests),
            "distinct_webhook_ids": len(receiver.unique_ids),
        }
    sys.stdout.write(json.dumps(figures, indent=2) + "\n")
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
