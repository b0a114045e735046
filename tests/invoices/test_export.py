"""`manage.py export_invoices`: the admin's CSV, from the command line."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.factories import AccountFactory, make_invoice


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.mark.django_db
def test_export_to_stdout_filtered_by_month_and_state():
    nov = make_invoice(
        account=AccountFactory(currency="JPY"), period=dt.date(2026, 11, 1), lines=[("3", "333")],
        state="pending",
    )  # fmt: skip
    make_invoice(period=dt.date(2026, 11, 1))
    make_invoice(period=dt.date(2026, 10, 1), state="pending")
    out = io.StringIO()
    call_command("export_invoices", "--month", "2026-11", "--state", "pending", stdout=out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [row["number"] for row in rows] == [nov.friendly_id]
    assert rows[0]["total"] == "999"  # JPY has no minor unit
    assert rows[0]["period"] == "2026-11"


@pytest.mark.django_db
def test_export_to_a_file(tmp_path):
    make_invoice()
    make_invoice()
    target = tmp_path / "out.csv"
    out = io.StringIO()
    call_command("export_invoices", "-o", str(target), "--no-progress", stdout=out)
    assert "Exported 2 invoice(s)" in out.getvalue()
    assert len(target.read_text().splitlines()) == 3
    assert not (tmp_path / "out.csv.partial").exists()


@pytest.mark.django_db
def test_bad_month_is_a_clear_error():
    with pytest.raises(CommandError, match="YYYY-MM"):
        call_command("export_invoices", "--month", "11/2026")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "bad", ["2026-13", "2026-1", "26-01", "2026-01-01", "２０２６-01", "2026-00"]
)
def test_only_a_month_is_a_month(bad):
    with pytest.raises(CommandError, match="YYYY-MM"):
        call_command("export_invoices", "--month", bad)


@pytest.mark.django_db
def test_month_is_the_period():
    make_invoice(period=dt.date(2026, 2, 1))
    out = io.StringIO()
    call_command("export_invoices", "--month", "2026-02", stdout=out)
    assert len(out.getvalue().splitlines()) == 2


@pytest.mark.django_db
def test_export_names_the_buyer_and_the_payment_and_drops_microseconds():
    from invoices import services

    account = AccountFactory(country="Germany", vat_code="DE123456789")
    invoice = make_invoice(account=account, state="pending")
    services.invoice_mark_paid(
        invoice=invoice, actor="test", method="bank_transfer", reference="SEPA-42"
    )
    draft = make_invoice()
    out = io.StringIO()
    call_command("export_invoices", stdout=out)
    rows = {row["id"]: row for row in csv.DictReader(io.StringIO(out.getvalue()))}
    paid = rows[str(invoice.pk)]
    assert (paid["buyer_country"], paid["buyer_vat_id"]) == ("Germany", "DE123456789")
    assert (paid["payment_method"], paid["payment_reference"]) == ("Bank transfer", "SEPA-42")
    assert rows[str(draft.pk)]["payment_method"] == ""
    for column in ("paid_at", "created_at"):
        value = paid[column]
        assert "." not in value and "+" not in value  # "2026-11-30 20:21:05", UTC
        assert dt.datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
