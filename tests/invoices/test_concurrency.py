"""Every write of an invoice, raced: at least 10 parallel requests against a live server
on PostgreSQL (each request on its own connection), starting together behind a barrier.
The end state must be one that the same requests, run one after the other, could give."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
import requests

from accounts.selectors import account_credit_balance
from invoices import services
from invoices.models import (
    CreditNote,
    Invoice,
    InvoiceCounter,
    InvoiceEvent,
    LineItem,
    PaymentTransaction,
)
from tests.factories import AccountFactory, make_api_key, make_invoice

# A plain flush after each test, like the other transactional tests of this folder
# (a serialized rollback could not reload its snapshot after their flushes).
pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

State = Invoice.State
N = 10


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
def key(db) -> str:
    return make_api_key(scope="write", name="race")[1]


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def assert_totals_agree(invoice: Invoice) -> None:
    lines = list(LineItem.objects.filter(invoice=invoice).values_list("cost", flat=True))
    assert invoice.cost_without_vat == sum(lines, Decimal(0))
    assert invoice.cost == invoice.cost_without_vat + invoice.vat_amount


def test_parallel_line_replacements_leave_one_requests_lines(live_server, key):
    # given a draft with one line
    invoice = make_invoice(account=AccountFactory())

    # when 10 clients each replace its lines with one line of their own price
    def replace(index, session):
        body = {"line_items": [{"description": f"line {index}", "price": str(index + 1)}]}
        return session.patch(
            f"{live_server.url}/v1/invoices/{invoice.pk}",
            json=body,
            headers=bearer(key),
            timeout=120,
        )

    responses = race(N, replace)

    # then each was applied in turn: the draft has exactly the last one's line
    assert [r.status_code for r in responses] == [200] * N, [r.text for r in responses][:3]
    invoice.refresh_from_db()
    [line] = LineItem.objects.filter(invoice=invoice)
    assert line.unit_price in {Decimal(i + 1) for i in range(N)}
    assert invoice.cost_without_vat == line.cost
    assert_totals_agree(invoice)


def test_parallel_line_additions_all_count(live_server, key):
    invoice = make_invoice(account=AccountFactory(), lines=[])

    def add(index, session):
        return session.post(
            f"{live_server.url}/api/invoices/{invoice.pk}/line_items.json",
            params={"access_token": key},
            json={"name": f"line {index}", "cost": str(index + 1)},
            timeout=120,
        )

    responses = race(N, add)

    assert [r.status_code for r in responses] == [201] * N, [r.text for r in responses][:3]
    invoice.refresh_from_db()
    assert LineItem.objects.filter(invoice=invoice).count() == N
    assert invoice.cost_without_vat == Decimal(sum(range(1, N + 1)))
    assert_totals_agree(invoice)


def test_parallel_issues_of_one_invoice_issue_it_once(live_server, key):
    invoice = make_invoice(account=AccountFactory())

    def issue(index, session):
        return session.post(
            f"{live_server.url}/v1/invoices/{invoice.pk}/issue", headers=bearer(key), timeout=120
        )

    responses = race(N, issue)

    assert Counter(r.status_code for r in responses) == {200: 1, 409: N - 1}
    invoice.refresh_from_db()
    assert invoice.state == State.PENDING
    assert invoice.friendly_id.endswith("-00000001")
    assert InvoiceCounter.objects.get().last_number == 1
    assert invoice.events.filter(to_state=State.PENDING).count() == 1


def test_replacing_lines_racing_an_issue_ends_consistent(live_server, key):
    invoice = make_invoice(account=AccountFactory())

    def act(index, session):
        if index % 2:
            return session.post(
                f"{live_server.url}/v1/invoices/{invoice.pk}/issue",
                headers=bearer(key),
                timeout=120,
            )
        body = {"line_items": [{"description": "x", "price": str(index + 1)}]}
        return session.patch(
            f"{live_server.url}/v1/invoices/{invoice.pk}",
            json=body,
            headers=bearer(key),
            timeout=120,
        )

    responses = race(N, act)

    assert all(r.status_code in (200, 409) for r in responses), [r.text for r in responses]
    invoice.refresh_from_db()
    assert invoice.state == State.PENDING
    assert invoice.events.filter(to_state=State.PENDING).count() == 1
    # what was issued is what its lines say, whichever replacement came last before it
    assert_totals_agree(invoice)


def test_parallel_cancels_cancel_once(live_server, key):
    invoice = make_invoice(account=AccountFactory(), state=State.PENDING)

    def cancel(index, session):
        return session.post(
            f"{live_server.url}/v1/invoices/{invoice.pk}/cancel",
            json={"reason": f"r{index}"},
            headers=bearer(key),
            timeout=120,
        )

    responses = race(N, cancel)

    assert Counter(r.status_code for r in responses) == {200: 1, 409: N - 1}
    invoice.refresh_from_db()
    assert invoice.state == State.CANCELLED
    assert invoice.events.filter(to_state=State.CANCELLED).count() == 1


def test_parallel_charges_over_v1_charge_once(live_server, key):
    invoice = make_invoice(account=AccountFactory(card_token="tok_visa"), state=State.PENDING)

    def charge(index, session):
        return session.post(
            f"{live_server.url}/v1/invoices/{invoice.pk}/charge", headers=bearer(key), timeout=120
        )

    responses = race(N, charge)

    assert Counter(r.status_code for r in responses) == {200: 1, 409: N - 1}
    invoice.refresh_from_db()
    assert invoice.state == State.PAID
    [payment] = PaymentTransaction.objects.filter(invoice=invoice)
    assert payment.success and payment.amount == invoice.cost


def test_parallel_payments_recorded_record_one(live_server, key):
    invoice = make_invoice(account=AccountFactory(), state=State.UNPAID)

    def mark_paid(index, session):
        return session.post(
            f"{live_server.url}/v1/invoices/{invoice.pk}/mark_paid",
            json={"reference": f"wire-{index}"},
            headers=bearer(key),
            timeout=120,
        )

    responses = race(N, mark_paid)

    assert Counter(r.status_code for r in responses) == {200: 1, 409: N - 1}
    invoice.refresh_from_db()
    assert invoice.state == State.PAID
    assert PaymentTransaction.objects.filter(invoice=invoice, success=True).count() == 1
    assert invoice.events.filter(to_state=State.PAID).count() == 1


def test_parallel_numbers_set_on_one_invoice_keep_the_first(live_server, key):
    # given a series that has reached 20 with holes, and one draft of it
    invoice = make_invoice(account=AccountFactory())
    series = f"{invoice.period:%Y-%m}"
    InvoiceCounter.objects.create(series=series, last_number=20)

    # when 10 clients each set a different number on it
    def number(index, session):
        return session.put(
            f"{live_server.url}/api/invoices/{invoice.pk}.json",
            params={"access_token": key},
            json={"friendly_id": f"{series}-{index + 1:08d}"},
            timeout=120,
        )

    responses = race(N, number)

    # then one number won, the others were refused (a number is final), the series stayed put
    assert Counter(r.status_code for r in responses) == {200: 1, 422: N - 1}
    winner = next(r for r in responses if r.status_code == 200).json()["invoice"]["friendly_id"]
    invoice.refresh_from_db()
    assert invoice.friendly_id == winner
    assert InvoiceCounter.objects.get().last_number == 20
    assert invoice.events.filter(kind=InvoiceEvent.Kind.UPDATED).count() == 1


def test_one_number_set_on_many_invoices_is_given_once(live_server, key):
    account = AccountFactory()
    invoices = [make_invoice(account=account) for _ in range(N)]
    series = f"{invoices[0].period:%Y-%m}"
    InvoiceCounter.objects.create(series=series, last_number=5)

    def number(index, session):
        return session.put(
            f"{live_server.url}/api/invoices/{invoices[index].pk}.json",
            params={"access_token": key},
            json={"friendly_id": f"{series}-00000003"},
            timeout=120,
        )

    responses = race(N, number)

    assert Counter(r.status_code for r in responses) == {200: 1, 422: N - 1}
    assert Invoice.objects.filter(friendly_id=f"{series}-00000003").count() == 1
    assert InvoiceCounter.objects.get().last_number == 5


def test_parallel_credit_notes_never_exceed_the_invoice(live_server, key):
    # given an issued invoice of 100.00
    invoice = make_invoice(account=AccountFactory(), state=State.UNPAID)

    # when 10 clients each credit 15.00 of it at once
    def credit(index, session):
        return session.post(
            f"{live_server.url}/v1/invoices/{invoice.pk}/credit_notes",
            json={"reason": f"race {index}", "amount": "15.00"},
            headers=bearer(key),
            timeout=120,
        )

    responses = race(N, credit)

    # then six fit and the others are refused, the numbers have no gap
    codes = Counter(r.status_code for r in responses)
    assert codes == {201: 6, 400: 4}, [r.text for r in responses][:3]
    invoice.refresh_from_db()
    notes = CreditNote.objects.filter(invoice=invoice)
    assert invoice.amount_credited == sum((n.cost for n in notes), Decimal(0)) == Decimal("90")
    assert invoice.amount_due() == Decimal("10")
    numbers = sorted(int(n.number.rsplit("-", 1)[1]) for n in notes)
    assert numbers == list(range(1, 7))
    series = notes.first().number.rsplit("-", 1)[0]
    assert InvoiceCounter.objects.get(series=series).last_number == 6


def test_parallel_payments_all_count_and_pay_once(live_server, key):
    # given an unpaid invoice of 100.00
    account = AccountFactory()
    invoice = make_invoice(account=account, state=State.UNPAID)

    # when 10 clients each record a payment of 12.50 at once
    def pay(index, session):
        return session.post(
            f"{live_server.url}/v1/invoices/{invoice.pk}/payments",
            json={"amount": "12.50", "date": str(invoice.issued_on), "method": "bank_transfer"},
            headers=bearer(key),
            timeout=120,
        )

    responses = race(N, pay)

    # then eight settle it, it is paid once, and what came after (or too much) is refused
    # or credited: payments on a paid invoice are refused (409)
    codes = Counter(r.status_code for r in responses)
    assert codes == {201: 8, 409: 2}, [r.text for r in responses][:3]
    invoice.refresh_from_db()
    assert (invoice.state, invoice.amount_paid, invoice.amount_due()) == (
        State.PAID,
        Decimal("100"),
        Decimal("0"),
    )
    assert InvoiceEvent.objects.filter(invoice=invoice, to_state=State.PAID).count() == 1
    assert PaymentTransaction.objects.filter(invoice=invoice, action="payment").count() == 8


def test_parallel_issues_consume_a_credit_balance_once(live_server, key):
    # given an account with 100.00 of credit (an overpayment) and 10 drafts of 30.00
    account = AccountFactory()
    paid = make_invoice(account=account, state=State.PENDING)
    services.invoice_payment_record(
        invoice=paid, amount=Decimal("200"), paid_on=paid.issued_on, actor="test"
    )
    drafts = [make_invoice(account=account, lines=[("1", "30.00")]) for _ in range(N)]

    # when all of them are issued at once
    def issue(index, session):
        return session.post(
            f"{live_server.url}/v1/invoices/{drafts[index].pk}/issue",
            headers=bearer(key),
            timeout=120,
        )

    responses = race(N, issue)

    # then the credit is spent exactly once: 30 + 30 + 30 + 10, the rest pay in full
    assert [r.status_code for r in responses] == [200] * N, [r.text for r in responses][:3]
    applied = sorted(
        Invoice.objects.filter(pk__in=[d.pk for d in drafts]).values_list(
            "credit_applied", flat=True
        )
    )
    assert sum(applied, Decimal(0)) == Decimal("100")
    assert applied[-4:] == [Decimal("10"), Decimal("30"), Decimal("30"), Decimal("30")]
    assert account_credit_balance(account, "USD") == Decimal("0")
