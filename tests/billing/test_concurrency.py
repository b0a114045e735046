"""Concurrency on PostgreSQL: real parallel requests against a live server, each request on
its own database connection, so the row locks, counters and constraints are what decide.

Every race starts behind a barrier, so the requests really arrive together. The outcome is
checked, never the timing.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.utils import timezone

from invoices.models import Invoice, PaymentTransaction
from tests.factories import AccountFactory, make_api_key, make_invoice
from tests.support.billing_run import assert_billed_once, manage, seed_usage

# serialized_rollback: a plain flush after these tests would drop the data the migrations
# load (the staff groups) and recreate content types under new ids, which later
# serialized tests (the browser tests) could not load their snapshot over.
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

State = Invoice.State


def race(count: int, send) -> list[requests.Response]:
    """Run `send(index, session)` in `count` threads that all start at the same moment."""
    barrier = threading.Barrier(count)

    def one(index: int) -> requests.Response:
        session = requests.Session()
        barrier.wait(timeout=60)
        return send(index, session)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


@pytest.fixture
def provider_key(db) -> str:
    return make_api_key(scope="write", name="race")[1]


def test_parallel_issues_give_gap_free_numbers(live_server, provider_key):
    # given 50 drafts of one month, so one number series
    period = timezone.now().date().replace(day=1)
    account = AccountFactory()
    invoices = [make_invoice(account=account, period=period) for _ in range(50)]

    # when all of them are issued at once
    def issue(index, session):
        return session.put(
            f"{live_server.url}/api/invoices/{invoices[index].pk}/state.json",
            params={"access_token": provider_key, "state": "pending"},
            timeout=120,
        )

    responses = race(50, issue)

    # then every one is issued, and the numbers are 1..50 of the series, no gaps, no repeats
    assert [r.status_code for r in responses] == [200] * 50, [r.text for r in responses][:3]
    numbers = sorted(
        int(fid.rsplit("-", 1)[1])
        for fid in Invoice.objects.filter(account=account).values_list("friendly_id", flat=True)
    )
    assert numbers == list(range(1, 51))
    series = {
        fid.rsplit("-", 1)[0] for fid in Invoice.objects.values_list("friendly_id", flat=True)
    }
    assert series == {f"{period:%Y-%m}"}


def test_parallel_charges_of_one_invoice_charge_once(live_server, provider_key):
    invoice = make_invoice(account=AccountFactory(card_token="tok_visa"), state=State.PENDING)

    def charge(index, session):
        return session.post(
            f"{live_server.url}/api/invoices/{invoice.pk}/charge.json",
            params={"access_token": provider_key},
            timeout=120,
        )

    responses = race(20, charge)

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 422: 19}, statuses
    invoice.refresh_from_db()
    assert invoice.state == State.PAID
    purchases = PaymentTransaction.objects.filter(invoice=invoice)
    assert purchases.count() == 1
    assert purchases.get().success is True
    assert purchases.get().amount == invoice.cost


def test_parallel_posts_with_one_idempotency_key_create_one_invoice(live_server, provider_key):
    account = AccountFactory()
    key = f"order-{uuid.uuid4()}"
    today = timezone.now().date()
    body = {
        "customer_id": account.pk,
        "amount": "120.50",
        "date": today.isoformat(),
        "due_date": (today + dt.timedelta(days=30)).isoformat(),
    }

    def create(index, session):
        return session.post(
            f"{live_server.url}/v1/invoices",
            json=body,
            headers={"Authorization": f"Bearer {provider_key}", "Idempotency-Key": key},
            timeout=120,
        )

    responses = race(20, create)

    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}, statuses
    assert statuses[201] >= 1
    assert Invoice.objects.filter(account=account).count() == 1
    created = {r.json()["id"] for r in responses if r.status_code == 201}
    assert len(created) == 1  # a replay answers with the same invoice
    for refused in (r for r in responses if r.status_code == 409):
        assert refused.json()["error"]["code"] == "idempotency_request_in_progress"


@pytest.mark.parametrize("round_", range(5))
def test_cancel_racing_a_charge_ends_consistent(live_server, provider_key, round_):
    invoice = make_invoice(account=AccountFactory(card_token="tok_visa"), state=State.PENDING)
    headers = {"Authorization": f"Bearer {provider_key}"}

    def act(index, session):
        action = "cancel" if index % 2 == 0 else "charge"
        return session.post(
            f"{live_server.url}/v1/invoices/{invoice.pk}/{action}", headers=headers, timeout=120
        )

    responses = race(4, act)

    assert all(r.status_code < 500 for r in responses), [r.text for r in responses]
    invoice.refresh_from_db()
    successes = PaymentTransaction.objects.filter(invoice=invoice, success=True).count()
    if invoice.state == State.PAID:
        assert successes == 1
    else:
        assert invoice.state == State.CANCELLED
        assert successes == 0


def test_two_billing_runs_at_once_bill_each_account_once(db):
    period = (timezone.now().date().replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    totals = seed_usage(accounts=24, records=12, period=period)

    month = f"{period:%Y-%m}"
    runs = [
        manage("run_billing", "--month", month, "--batch-size", "3", "--no-progress")
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs

    assert_billed_once(totals, period)
    assert Invoice.objects.count() == len(totals)
