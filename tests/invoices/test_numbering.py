"""Invoice numbers: assigned when leaving open, per series, gap-free even under concurrency."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection, connections

from invoices import services
from invoices.exceptions import InvoiceValidationError
from invoices.models import Invoice, InvoiceCounter
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


def _gap(series: str, last_number: int) -> None:
    """A series that has given out numbers up to `last_number` with holes (numbers from
    before this system, say): the only numbers a hand can set."""
    InvoiceCounter.objects.create(series=series, last_number=last_number)


@pytest.mark.django_db
def test_hand_set_number_fills_a_gap_and_the_series_goes_on_unmoved():
    _gap("2026-11", 50)
    invoice = services.invoice_update(
        invoice=make_invoice(period=NOV), friendly_id="2026-11-00000042", actor="t"
    )
    invoice = services.invoice_issue(invoice=invoice, actor="t")
    assert invoice.friendly_id == "2026-11-00000042"
    nxt = services.invoice_issue(invoice=make_invoice(period=NOV), actor="t")
    assert nxt.friendly_id == "2026-11-00000051"


@pytest.mark.django_db
def test_a_number_the_series_has_not_reached_is_refused_and_moves_nothing():
    # given a series at 3
    for _ in range(3):
        services.invoice_issue(invoice=make_invoice(period=NOV), actor="t")
    invoice = make_invoice(period=NOV)
    # when a hand sets a number ahead of it (it would split the series)
    with pytest.raises(InvoiceValidationError, match="has not reached") as err:
        services.invoice_update(invoice=invoice, friendly_id="2026-11-99999999", actor="t")
    # then nothing moved: the next automatic number is 4, and no other counter appeared
    assert err.value.field == "friendly_id"
    assert services.invoice_issue(invoice=invoice, actor="t").friendly_id == "2026-11-00000004"
    assert list(InvoiceCounter.objects.values_list("series", "last_number")) == [("2026-11", 4)]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "number",
    [
        "2026-13-00000001",  # month 13
        "2026-00-00000001",  # month 00
        "2026-10-00000001",  # another month's series
        "2026-00000001",  # the yearly series, numbering is monthly
        "٢٠٢٦-11-00000001",  # Arabic-Indic digits
        "2026-11-０００００００1",  # full-width digits
        "2026-11-00000000",  # number 0
    ],
)
def test_a_number_outside_the_invoices_series_is_refused_without_a_counter_row(number):
    _gap("2026-11", 5)
    with pytest.raises(InvoiceValidationError) as err:
        services.invoice_update(invoice=make_invoice(period=NOV), friendly_id=number, actor="t")
    assert err.value.field == "friendly_id"
    assert list(InvoiceCounter.objects.values_list("series", flat=True)) == ["2026-11"]


@pytest.mark.django_db
def test_a_numbered_invoice_is_not_renumbered():
    _gap("2026-11", 10)
    finalized = services.invoice_finalize(invoice=make_invoice(period=NOV), actor="t")
    with pytest.raises(InvoiceValidationError, match="cannot be changed"):
        services.invoice_update(invoice=finalized, friendly_id="2026-11-00000003", actor="t")
    assert Invoice.objects.get(pk=finalized.pk).friendly_id == "2026-11-00000011"


@pytest.mark.django_db
def test_the_period_stays_in_the_series_of_the_number():
    finalized = services.invoice_finalize(invoice=make_invoice(period=NOV), actor="t")
    with pytest.raises(InvoiceValidationError) as err:
        services.invoice_update(invoice=finalized, period=dt.date(2026, 10, 1), actor="t")
    assert err.value.field == "period"
    # a day of the same month is the same period
    services.invoice_update(invoice=finalized, period=dt.date(2026, 11, 20), actor="t")
    assert Invoice.objects.get(pk=finalized.pk).period == NOV


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
        services.invoice_update(
            invoice=make_invoice(period=NOV), friendly_id=taken.friendly_id, actor="t"
        )


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
