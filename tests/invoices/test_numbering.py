"""Invoice numbers: assigned when leaving open, per series, gap-free even under concurrency."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection, connections

from invoices import services
from invoices.exceptions import InvoiceValidationError
from invoices.models import Invoice
from tests.factories import AccountFactory, make_invoice

NOV = dt.date(2026, 11, 1)


@pytest.mark.django_db
def test_open_invoices_have_no_number_and_issue_assigns_one():
    invoice = make_invoice(period=NOV)
    assert invoice.friendly_id is None
    invoice = services.invoice_issue(invoice=invoice, actor="t")
    assert invoice.friendly_id == "2026-11-00000001"


@pytest.mark.django_db
def test_numbers_follow_each_other_per_series_and_finalize_numbers_too():
    first = services.invoice_finalize(invoice=make_invoice(period=NOV), actor="t")
    second = services.invoice_issue(invoice=make_invoice(period=NOV), actor="t")
    other_series = services.invoice_issue(
        invoice=make_invoice(period=dt.date(2026, 10, 1)), actor="t"
    )
    # issuing the finalized one keeps its number
    first = services.invoice_issue(invoice=first, actor="t")
    assert [first.friendly_id, second.friendly_id, other_series.friendly_id] == [
        "2026-11-00000001",
        "2026-11-00000002",
        "2026-10-00000001",
    ]


@pytest.mark.django_db
def test_cancelled_drafts_leave_no_hole():
    services.invoice_cancel(invoice=make_invoice(period=NOV), actor="t")
    issued = services.invoice_issue(invoice=make_invoice(period=NOV), actor="t")
    assert issued.friendly_id == "2026-11-00000001"


@pytest.mark.django_db
def test_yearly_numbering(settings):
    settings.INVOICE_NUMBERING = "yearly"
    a = services.invoice_issue(invoice=make_invoice(period=dt.date(2026, 3, 1)), actor="t")
    b = services.invoice_issue(invoice=make_invoice(period=NOV), actor="t")
    assert (a.friendly_id, b.friendly_id) == ("2026-00000001", "2026-00000002")


@pytest.mark.django_db
def test_hand_set_number_is_kept_and_later_numbers_continue_after_it():
    invoice = services.invoice_update(
        invoice=make_invoice(period=NOV), friendly_id="2026-11-00000042", actor="t"
    )
    invoice = services.invoice_issue(invoice=invoice, actor="t")
    assert invoice.friendly_id == "2026-11-00000042"
    nxt = services.invoice_issue(invoice=make_invoice(period=NOV), actor="t")
    assert nxt.friendly_id == "2026-11-00000043"


@pytest.mark.django_db
@pytest.mark.parametrize("bad", ["2026-11-1", "abc", "2026-1-00000001", "2026-11-000000001"])
def test_hand_set_number_format(bad):
    with pytest.raises(InvoiceValidationError) as err:
        services.invoice_update(invoice=make_invoice(), friendly_id=bad, actor="t")
    assert err.value.field == "friendly_id"


@pytest.mark.django_db
def test_hand_set_number_must_be_unique():
    taken = services.invoice_issue(invoice=make_invoice(period=NOV), actor="t")
    with pytest.raises(InvoiceValidationError, match="already been taken"):
        services.invoice_update(invoice=make_invoice(), friendly_id=taken.friendly_id, actor="t")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_issuing_gives_numbers_one_to_n():
    # given N open invoices of one series
    n = 24
    account = AccountFactory()
    ids = [make_invoice(account=account, period=NOV).pk for _ in range(n)]
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def issue(invoice_id: int) -> None:
        try:
            barrier.wait(timeout=30)
            services.invoice_issue(invoice=Invoice(pk=invoice_id), actor="thread")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    # when every invoice is issued at once, each thread on its own connection
    threads = [threading.Thread(target=issue, args=(pk,)) for pk in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then the numbers are exactly 1..N
    assert errors == []
    assert connection.vendor == "postgresql"
    numbers = sorted(
        int(f.rsplit("-", 1)[1])
        for f in Invoice.objects.filter(pk__in=ids).values_list("friendly_id", flat=True)
    )
    assert numbers == list(range(1, n + 1))
