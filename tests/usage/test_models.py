"""UsageRecord.objects.of_month / unbilled: the one definition of a month's (unbilled) usage."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from invoices.services import LineSpec, invoices_upsert_background_lines
from tests.factories import AccountFactory
from usage.models import UsageRecord


def make(account, client_id: str, start: dt.datetime) -> UsageRecord:
    return UsageRecord.objects.create(
        account=account, client_id=client_id, resource_id="r", service="EC2", region="eu",
        start_time=start, end_time=start, duration=0, cost=Decimal("1"),
    )  # fmt: skip


@pytest.mark.django_db
def test_a_month_is_its_first_instant_up_to_the_next_months_first():
    account = AccountFactory()
    make(account, "dec-last", dt.datetime(2021, 12, 31, 23, 59, 59, tzinfo=dt.UTC))
    make(account, "jan-first", dt.datetime(2022, 1, 1, tzinfo=dt.UTC))
    make(account, "jan-last", dt.datetime(2022, 1, 31, 23, 59, 59, tzinfo=dt.UTC))
    make(account, "feb-first", dt.datetime(2022, 2, 1, tzinfo=dt.UTC))
    make(account, "the-end", dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC))
    month = UsageRecord.objects.of_month(dt.date(2022, 1, 17))
    assert set(month.values_list("client_id", flat=True)) == {"jan-first", "jan-last"}
    last = UsageRecord.objects.of_month(dt.date(9999, 12, 1))
    assert list(last.values_list("client_id", flat=True)) == ["the-end"]


@pytest.mark.django_db
def test_unbilled_leaves_out_records_linked_to_a_line():
    account = AccountFactory()
    billed = make(account, "billed", dt.datetime(2022, 1, 2, tzinfo=dt.UTC))
    make(account, "open", dt.datetime(2022, 1, 3, tzinfo=dt.UTC))
    written = invoices_upsert_background_lines(
        period=dt.date(2022, 1, 1),
        lines_by_account={
            account.pk: [LineSpec("EC2", Decimal(1), Decimal(1), "usage", "usage:EC2:eu")]
        },
        actor="t",
        now=dt.datetime(2022, 2, 1, tzinfo=dt.UTC),
    )
    UsageRecord.objects.filter(pk=billed.pk).update(
        line_item_id=written.line_ids[(account.pk, "usage:EC2:eu")]
    )
    unbilled = UsageRecord.objects.unbilled(dt.date(2022, 1, 1))
    assert list(unbilled.values_list("client_id", flat=True)) == ["open"]
