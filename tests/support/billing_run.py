"""The billing run in real processes on the test database (PostgreSQL), and its expected end state."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from django.db import connection
from django.db.models import Sum

from invoices.models import Invoice, LineItem
from tests.factories import AccountFactory
from usage import services as usage_services
from usage.models import UsageRecord

ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    settings = connection.settings_dict
    user = settings["USER"] or "postgres"
    password = f":{settings['PASSWORD']}" if settings["PASSWORD"] else ""
    host = settings["HOST"] or "127.0.0.1"
    port = settings["PORT"] or "5432"
    return f"postgres://{user}{password}@{host}:{port}/{settings['NAME']}"


def manage(*args: str) -> subprocess.Popen:
    env = dict(os.environ, DATABASE_URL=database_url(), DJANGO_SETTINGS_MODULE="tests.settings")
    return subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def seed_usage(accounts: int, records: int, period: dt.date) -> dict[int, Decimal]:
    """Usage for `accounts` accounts in `period`; returns each account's expected total."""
    start = dt.datetime.combine(period, dt.time(), tzinfo=dt.UTC)
    totals: dict[int, Decimal] = {}
    for a in range(accounts):
        account = AccountFactory()
        batch = [
            {
                "id": f"rec-{a}-{n}",
                "account_id": account.pk,
                "resource_id": f"i-{n % 3}",
                "service": ("EC2", "S3")[n % 2],
                "region": ("us-east-1", "eu-west-1")[n % 3 % 2],
                "start_time": (start + dt.timedelta(hours=n)).isoformat(),
                "end_time": (start + dt.timedelta(hours=n, minutes=30)).isoformat(),
                "cost": f"{(n % 7) + 1}.25",
            }
            for n in range(records)
        ]
        usage_services.usage_ingest(records=batch)
        totals[account.pk] = sum((Decimal(r["cost"]) for r in batch), Decimal(0))
    return totals


def assert_billed_once(totals: dict[int, Decimal], period: dt.date) -> None:
    """Each account has one background invoice whose lines add up to its usage, exactly once."""
    assert not UsageRecord.objects.filter(line_item__isnull=True).exists()
    for account_id, total in totals.items():
        invoices = Invoice.objects.filter(
            account_id=account_id, period=period, creation_type=Invoice.CreationType.BACKGROUND
        )
        assert invoices.count() == 1, account_id
        lines = LineItem.objects.filter(invoice=invoices.get())
        assert lines.aggregate(s=Sum("cost"))["s"] == total
        linked = UsageRecord.objects.filter(line_item__in=lines)
        assert linked.count() == UsageRecord.objects.filter(account_id=account_id).count()
        assert linked.aggregate(s=Sum("cost"))["s"] == total
