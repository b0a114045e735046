"""A rated billing run killed with SIGKILL mid-way, on PostgreSQL: the next run finishes it.

The run is a real `manage.py run_billing` process on this test's database. Each
account has a plan (a monthly fee and graduated API calls) and both metered and
pre-rated usage; the end state must be that of one uninterrupted run.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import time
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.utils import timezone

from invoices.models import Invoice, LineItem
from tests.factories import AccountFactory
from tests.support.artifacts import record_figures
from tests.support.billing_run import manage
from tests.support.pricing import scale_plan
from usage import rating, selectors
from usage import services as usage_services
from usage.models import UsageRecord
from usage.subscriptions import subscription_create

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


def seed_rated(accounts: int, records: int, period: dt.date) -> dict[int, Decimal]:
    """Subscribed accounts with metered and pre-rated usage; each one's expected net total."""
    plan = scale_plan("crash-scale")
    start = dt.datetime.combine(period, dt.time(), tzinfo=dt.UTC)
    totals: dict[int, Decimal] = {}
    for a in range(accounts):
        account = AccountFactory(currency="USD")
        subscription_create(
            account=account, plan=plan, start_date=period + dt.timedelta(days=a % 5)
        )
        batch = [
            {
                "id": f"m-{a}-{n}",
                "account_id": account.pk,
                "metric": "api_calls",
                "quantity": str(300 * (n + 1)),
                "start_time": (start + dt.timedelta(days=5, hours=n)).isoformat(),
            }
            for n in range(records)
        ] + [
            {
                "id": f"p-{a}",
                "account_id": account.pk,
                "resource_id": "i-1",
                "service": "EC2",
                "region": "us-east-1",
                "start_time": start.isoformat(),
                "end_time": (start + dt.timedelta(hours=1)).isoformat(),
                "cost": "1.25",
            }
        ]
        usage_services.usage_ingest(records=batch)
        rated = selectors.rate_account_month(account.pk, period)
        totals[account.pk] = rating.lines_total(rated, "USD") + Decimal("1.25")
    return totals


def assert_rated_once(totals: dict[int, Decimal], period: dt.date) -> None:
    assert not UsageRecord.objects.filter(line_item__isnull=True).exists()
    for account_id, total in totals.items():
        invoice = Invoice.objects.get(
            account_id=account_id, period=period, creation_type=Invoice.CreationType.BACKGROUND
        )
        lines = LineItem.objects.filter(invoice=invoice)
        assert lines.aggregate(s=Sum("cost"))["s"] == total, account_id
        assert invoice.cost_without_vat == total
        assert lines.filter(source__startswith="plan:").count() == 1
        linked = UsageRecord.objects.filter(line_item__in=lines)
        assert linked.count() == UsageRecord.objects.filter(account_id=account_id).count()


def test_a_rated_billing_run_killed_mid_way_is_finished_by_the_next_run(db):
    period = (timezone.now().date().replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    totals = seed_rated(accounts=60, records=6, period=period)
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

    # then the next run bills the rest, as one uninterrupted run would have
    rerun = manage("run_billing", "--month", month, "--no-progress")
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, out + err
    assert_rated_once(totals, period)
    state = sorted(LineItem.objects.values_list("invoice_id", "source", "quantity", "cost"))
    # and a third run changes nothing
    third = manage("run_billing", "--month", month, "--no-progress")
    out, err = third.communicate(timeout=300)
    assert third.returncode == 0, out + err
    assert_rated_once(totals, period)
    assert sorted(LineItem.objects.values_list("invoice_id", "source", "quantity", "cost")) == state
    record_figures(
        "crash_rated_billing_run",
        accounts=len(totals),
        invoices_when_killed=billed_before,
        invoices_after_rerun=Invoice.objects.filter(period=period).count(),
        duplicates=0,
        lost=0,
    )
