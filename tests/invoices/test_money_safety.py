"""Invoice money safety: totals that cannot overflow, line costs stored as sent, one
currency per invoice, issue dates that are data (not event times), deleted accounts
that are not charged, and PDF reads that never write."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Account
from accounts.services import account_soft_delete, account_update
from billing.lib.money import MAX_AMOUNT
from invoices import pdf, selectors, services
from invoices.exceptions import AccountNotBillable, InvoiceValidationError
from invoices.models import Invoice, InvoiceCounter, InvoiceEvent, LineItem, PaymentTransaction
from tests.factories import AccountFactory, make_api_key, make_invoice

pytestmark = pytest.mark.django_db
State = Invoice.State


def fingerprint() -> tuple:
    return (
        list(Invoice.objects.order_by("id").values_list("id", "state", "cost", "currency")),
        list(LineItem.objects.order_by("id").values_list("id", "cost")),
        InvoiceEvent.objects.count(),
        PaymentTransaction.objects.count(),
        list(InvoiceCounter.objects.values_list("series", "last_number")),
    )


@pytest.fixture
def key() -> str:
    return make_api_key(scope="write", name="money")[1]


def v1(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def post_json(client, path: str, body):
    return client.post(path, data=json.dumps(body), content_type="application/json")


def api(client, method: str, path: str, key: str, body: dict):
    return getattr(client, method)(
        f"{path}?access_token={key}", data=json.dumps(body), content_type="application/json"
    )


# --- totals that cannot overflow -----------------------------------------------------------


def test_v1_create_with_lines_adding_up_past_the_limit_is_400_and_writes_nothing(key):
    account = AccountFactory()
    today = timezone.now().date()
    before = fingerprint()
    body = {
        "customer_id": account.pk,
        "date": today.isoformat(),
        "due_date": today.isoformat(),
        "line_items": [{"description": "x", "price": "999999999999.99"}] * 101,
    }
    response = post_json(v1(key), "/v1/invoices", body)
    assert response.status_code == 400, response.content
    assert "line_items" in response.json()["error"]["details"]
    assert fingerprint() == before


def test_api_line_that_would_overflow_the_invoice_total_is_422_and_writes_nothing(client, key):
    invoice = make_invoice(lines=[("1", str(MAX_AMOUNT))])
    before = fingerprint()
    response = api(
        client,
        "post",
        f"/api/invoices/{invoice.pk}/line_items.json",
        key,
        {"name": "one more", "cost": str(MAX_AMOUNT)},
    )
    assert response.status_code == 422, response.content
    assert "cost" in response.json()["errors"]
    assert fingerprint() == before


def test_the_lines_total_may_reach_the_limit_exactly():
    invoice = make_invoice(lines=[("1", "999999999999.00")])
    services.line_item_add(invoice=invoice, name="rest", unit_price=Decimal("0.99"), actor="t")
    invoice.refresh_from_db()
    assert invoice.cost_without_vat == MAX_AMOUNT


# --- a line's cost is stored as sent, or refused ----------------------------------------------


@pytest.mark.parametrize(("cost", "quantity"), [("10", "3"), ("150.00", "3"), ("100", "1")])
def test_api_line_cost_is_stored_as_sent(client, key, cost, quantity):
    invoice = make_invoice(lines=[])
    response = api(
        client,
        "post",
        f"/api/invoices/{invoice.pk}/line_items.json",
        key,
        {"name": "Calls", "cost": cost, "quantity": quantity},
    )
    assert response.status_code == 201, response.content
    line = invoice.line_items.get()
    assert line.cost == Decimal(cost)
    invoice.refresh_from_db()
    assert invoice.cost_without_vat == Decimal(cost)


@pytest.mark.parametrize(("cost", "quantity"), [("100", "3000000"), ("0.01", "1000000000")])
def test_api_line_cost_that_no_unit_price_gives_back_is_422_saying_why(client, key, cost, quantity):
    # No unit price of eight places multiplies back to the cost: storing the cost
    # would break cost = round(quantity x unit price), storing the product would
    # change what was sent.
    invoice = make_invoice(lines=[])
    response = api(
        client,
        "post",
        f"/api/invoices/{invoice.pk}/line_items.json",
        key,
        {"name": "Calls", "cost": cost, "quantity": quantity},
    )
    assert response.status_code == 422
    [message] = response.json()["errors"]["cost"]
    assert message.startswith(f"cannot be split into {quantity} units")
    assert not invoice.line_items.exists()


def test_api_line_name_longer_than_255_is_422(client, key):
    invoice = make_invoice(lines=[])
    response = api(
        client,
        "post",
        f"/api/invoices/{invoice.pk}/line_items.json",
        key,
        {"name": "x" * 256, "cost": "1"},
    )
    assert response.status_code == 422
    assert response.json()["errors"]["name"] == ["is too long (maximum is 255 characters)"]
    assert not invoice.line_items.exists()


def test_api_line_cost_finer_than_the_currency_is_422_saying_why(client, key):
    invoice = make_invoice(lines=[])
    response = api(
        client,
        "post",
        f"/api/invoices/{invoice.pk}/line_items.json",
        key,
        {"name": "Calls", "cost": "10.555"},
    )
    assert response.status_code == 422
    assert response.json()["errors"]["cost"] == ["must have at most 2 decimal places in USD"]
    assert not invoice.line_items.exists()


# --- one currency per invoice --------------------------------------------------------------


def _usd_invoice_with_two_lines() -> Invoice:
    account = AccountFactory(currency="USD")
    return make_invoice(account=account, lines=[("1", "10.40"), ("1", "10.40")])


def test_currency_change_with_an_open_invoice_with_lines_is_refused():
    invoice = _usd_invoice_with_two_lines()
    with pytest.raises(ValidationError) as err:
        account_update(account=invoice.account, currency="JPY")
    assert "currency" in err.value.message_dict
    assert Account.objects.get(pk=invoice.account_id).currency == "USD"
    issued = services.invoice_issue(invoice=invoice, actor="t")
    assert (issued.currency, issued.cost_without_vat) == ("USD", Decimal("20.80"))
    assert sum(line.cost for line in issued.line_items.all()) == issued.cost_without_vat


def test_currency_change_over_the_api_is_422(client, key):
    invoice = _usd_invoice_with_two_lines()
    response = api(
        client, "put", f"/admin/api/accounts/{invoice.account_id}.json", key, {"currency": "JPY"}
    )
    assert response.status_code == 422, response.content
    assert "currency" in response.json()["errors"]


def test_currency_change_is_allowed_once_the_invoice_is_issued_or_empty():
    invoice = _usd_invoice_with_two_lines()
    services.invoice_issue(invoice=invoice, actor="t")
    account = account_update(account=invoice.account, currency="JPY")
    draft = make_invoice(account=account, lines=[("1", "10.40")])
    assert (draft.currency, draft.cost_without_vat) == ("JPY", Decimal("10"))


def test_an_invoice_whose_lines_disagree_with_the_account_currency_is_not_issued():
    # given an invoice left in USD with lines, its account switched behind the services' back
    invoice = _usd_invoice_with_two_lines()
    Account.objects.filter(pk=invoice.account_id).update(currency="JPY")
    # then it cannot be issued in yen with lines priced in dollars
    with pytest.raises(InvoiceValidationError) as err:
        services.invoice_issue(invoice=invoice, actor="t")
    assert err.value.field == "currency"
    assert Invoice.objects.get(pk=invoice.pk).state == State.OPEN


# --- issue dates are data; events record when ----------------------------------------------


def test_v1_issue_dated_2000_is_refused_and_writes_nothing(key):
    invoice = make_invoice()
    before = fingerprint()
    response = post_json(v1(key), f"/v1/invoices/{invoice.pk}/issue", {"date": "2000-01-01"})
    assert response.status_code == 400
    assert "date" in response.json()["error"]["details"]
    assert fingerprint() == before


def test_a_back_dated_issue_is_data_and_the_event_says_when_it_happened(key):
    # given a draft of last month
    last_month = (timezone.now().date().replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    invoice = make_invoice(period=last_month)
    day = last_month.replace(day=15)
    started = timezone.now()
    # when it is issued dated the 15th of that month
    response = post_json(v1(key), f"/v1/invoices/{invoice.pk}/issue", {"date": day.isoformat()})
    # then the invoice carries the date, the event the moment
    assert response.status_code == 200, response.content
    invoice.refresh_from_db()
    assert invoice.issued_on == day
    event = invoice.events.get(to_state=State.PENDING)
    assert event.created_at >= started
    assert event.data["issued_on"] == day.isoformat()
    assert invoice.finalized_at >= started


def test_an_issue_date_in_the_future_is_refused():
    invoice = make_invoice()
    with pytest.raises(InvoiceValidationError) as err:
        services.invoice_issue(
            invoice=invoice, actor="t", issued_on=timezone.now().date() + dt.timedelta(days=3)
        )
    assert err.value.field == "issued_on"


def test_the_due_date_rule_is_one_rule():
    account = AccountFactory(payment_terms_days=14)
    day = dt.date(2026, 3, 10)
    assert services.invoice_due_on(issued_on=day, account=account) == dt.date(2026, 3, 24)
    with pytest.raises(InvoiceValidationError):
        services.invoice_due_on(issued_on=day, account=account, due_on=dt.date(2026, 3, 9))
    with pytest.raises(InvoiceValidationError):
        services.invoice_due_on(issued_on=day, account=account, due_on=dt.date(2027, 3, 12))


# --- deleted accounts are not charged ------------------------------------------------------


def test_a_pending_invoice_of_a_deleted_account_is_not_charged(client, key):
    invoice = make_invoice(state=State.PENDING)
    account_soft_delete(account=invoice.account)
    before = fingerprint()
    with pytest.raises(AccountNotBillable):
        services.invoice_charge(invoice=invoice, actor="t")
    response = v1(key).post(f"/v1/invoices/{invoice.pk}/charge")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "account_not_billable"
    response = api(client, "post", f"/api/invoices/{invoice.pk}/charge.json", key, {})
    assert response.status_code == 422
    assert fingerprint() == before
    # and the daily charge run does not pick it up
    due = timezone.now() + dt.timedelta(days=400)
    assert invoice not in selectors.invoice_list_due_for_charge(due)


# --- reading a PDF never writes; a live rendering is reused --------------------------------


@pytest.fixture
def count_renders(monkeypatch, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    cache.clear()
    renders: list[int] = []
    real = pdf.invoice_pdf_bytes

    def counting(invoice):
        renders.append(invoice.pk)
        return real(invoice)

    monkeypatch.setattr(pdf, "invoice_pdf_bytes", counting)
    return renders


def test_a_draft_pdf_asked_for_twice_is_rendered_once(count_renders):
    invoice = make_invoice()
    first = pdf.invoice_pdf_content(invoice)
    second = pdf.invoice_pdf_content(Invoice.objects.get(pk=invoice.pk))
    assert first == second and first.startswith(b"%PDF")
    assert len(count_renders) == 1
    # a change to the draft is a new document
    services.line_item_add(invoice=invoice, name="more", unit_price=Decimal("1"), actor="t")
    pdf.invoice_pdf_content(Invoice.objects.get(pk=invoice.pk))
    assert len(count_renders) == 2


def test_an_issued_invoice_without_its_file_is_rendered_but_not_stored(count_renders):
    invoice = make_invoice(state=State.PENDING)  # the after-commit rendering never ran
    response = pdf.invoice_pdf_response(invoice)
    assert response.getvalue().startswith(b"%PDF")
    invoice.refresh_from_db()
    assert not invoice.pdf
    assert not invoice.events.filter(kind=InvoiceEvent.Kind.PDF_RENDERED).exists()
