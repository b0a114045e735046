"""The reproductions of the money-safety defects a hostile client found, one test each
(two for numbering), by the exact requests that broke the promise.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from urllib.parse import quote

import pytest
import requests
from django.utils import timezone

from accounts import services as account_services
from accounts.models import Account
from billing.lib.money import quantize
from invoices import services as invoice_services
from invoices.models import Invoice, InvoiceCounter, InvoiceEvent, LineItem, PaymentTransaction
from tests.factories import AccountFactory, make_api_key, make_invoice
from tests.support.hostile import body_text, changed, fingerprint, threescale_names, v1_names

State = Invoice.State
MAX_LINE = "999999999999.99"


def _json(response):
    return json.loads(body_text(response))


# 1 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/invoices.json", "/admin/api/signup.json"])
@pytest.mark.parametrize(
    "raw",
    [b"[" * 5000 + b"]" * 5000, b'{"a":' * 3000 + b"1" + b"}" * 3000],
    ids=["arrays", "objects"],
)
def test_defect_01_anonymous_deep_nesting_is_4xx_without_a_traceback(
    path, raw, world, hostile, caplog
):
    caplog.set_level(logging.DEBUG)
    response = hostile.send("POST", path, body=raw)
    assert response.status_code in (400, 403, 413), body_text(response)[:200]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


# 2 ------------------------------------------------------------------------------------------

SURROGATE = '"\\ud800"'


@pytest.mark.parametrize(
    ("method", "path", "body", "field", "api"),
    [
        (
            "POST",
            "/api/invoices/{open}/line_items.json",
            '{"name": %s, "cost": "1.00"}',
            "name",
            "3scale",
        ),
        (
            "POST",
            "/api/invoices/{open}/line_items.json",
            '{"name": "x", "description": %s, "cost": "1.00"}',
            "description",
            "3scale",
        ),
        ("PUT", "/admin/api/accounts/{owner}.json", '{"org_name": %s}', "org_name", "3scale"),
        ("PUT", "/admin/api/accounts/{owner}.json", '{"city": %s}', "city", "3scale"),
        ("POST", "/admin/api/signup.json", '{"org_name": %s}', "org_name", "3scale"),
        (
            "POST",
            "/v1/usage/report",
            '{"start_date": "2026-01-01", "end_date": "2026-01-31", "filters": {"region": %s}}',
            "region",
            "v1",
        ),
    ],
    ids=["line-name", "line-description", "account-org_name", "account-city", "signup", "report"],
)
def test_defect_02_lone_surrogates_are_refused_naming_the_field(
    method, path, body, field, api, world, hostile
):
    before = fingerprint()
    secret = world.owner_secret if "/invoices/" in path or api == "v1" else world.provider_secret
    response = hostile.send(
        method,
        world.fill(path),
        body=(body % SURROGATE).encode(),
        secret=secret,
        bearer=api == "v1",
    )
    assert response.status_code in (400, 422), body_text(response)[:200]
    names = threescale_names if api == "3scale" else v1_names
    assert names(response, field) or (api == "v1" and names(response, "filters"))
    assert not changed(before, fingerprint())


# 3 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("year=%C2%B2%C2%B2%C2%B2%C2%B2", "year"),
        ("month_number=%C2%B2", "month_number"),
        ("year=0000", "year"),
    ],
)
def test_defect_03_list_parameters_with_odd_digits_are_not_500(query, field, world, hostile):
    response = hostile.send("GET", f"/api/invoices.json?{query}", secret=world.owner_secret)
    assert response.status_code in (200, 400, 422), body_text(response)[:200]
    if response.status_code == 200:
        assert _json(response)["invoices"] == []
    else:
        assert threescale_names(response, field)


@pytest.mark.parametrize(
    ("method", "params", "field"),
    [
        ("GET", {"page": "²"}, "page"),
        ("GET", {"per_page": "²"}, "per_page"),
        ("GET", {"account_id": "²"}, "account_id"),
        ("GET", {"start_date": "9999-12-31", "end_date": "9999-12-31"}, "end_date"),
        ("POST", {"group_by": ["service"]}, "group_by"),
    ],
    ids=["page", "per_page", "account_id", "year-9999", "group_by-list"],
)
def test_defect_03_usage_report_parameters_are_not_500(method, params, field, world, hostile):
    values = {"start_date": "2026-01-01", "end_date": "2026-01-31", **params}
    if method == "GET":
        query = "&".join(f"{k}={quote(str(v))}" for k, v in values.items())
        response = hostile.send(
            "GET", f"/v1/usage/report?{query}", secret=world.owner_secret, bearer=True
        )
    else:
        response = hostile.send(
            "POST",
            "/v1/usage/report",
            body=json.dumps(values).encode(),
            secret=world.owner_secret,
            bearer=True,
        )
    assert response.status_code in (200, 400), body_text(response)[:200]
    if response.status_code == 400:
        assert v1_names(response, field) or v1_names(response, "start_date")
    if field == "end_date" and response.status_code == 200:
        assert _json(response)["usage"] == []


# 4 ------------------------------------------------------------------------------------------


def test_defect_04_v1_totals_cannot_overflow(world, hostile):
    before = fingerprint()
    body = {
        "customer_id": world.owner.pk,
        "draft": True,
        "line_items": [{"description": f"L{n}", "price": MAX_LINE} for n in range(101)],
    }
    response = hostile.send(
        "POST",
        "/v1/invoices",
        body=json.dumps(body).encode(),
        secret=world.owner_secret,
        bearer=True,
    )
    assert response.status_code == 400, body_text(response)[:200]
    assert v1_names(response, "line_items") or v1_names(response, "amount")
    assert not changed(before, fingerprint())


def test_defect_04_the_101st_api_line_cannot_overflow(world, hostile):
    # given an open invoice whose lines already add up to the largest invoice total
    # (the 100 lines of the largest line cost that overflowed the columns are refused
    # from the second one on)
    account = AccountFactory(org_name="Full House")
    invoice = invoice_services.invoice_create(account=account, period=None, actor="test")
    invoice_services.line_item_add(
        invoice=invoice, name="L0", quantity=Decimal(1), unit_price=Decimal(MAX_LINE), actor="test"
    )
    before = fingerprint()
    # when one more is added through /api
    response = hostile.send(
        "POST",
        f"/api/invoices/{invoice.pk}/line_items.json",
        body=json.dumps({"name": "one too many", "cost": MAX_LINE}).encode(),
        secret=world.provider_secret,
    )
    # then it is refused with a reason, and nothing changed
    assert response.status_code == 422, body_text(response)[:200]
    assert _json(response)["errors"]
    assert not changed(before, fingerprint())


# 5 ------------------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_defect_05_parallel_line_replacements_end_in_one_serial_outcome(live_server):
    # given a draft with one line
    account = AccountFactory(org_name="Racer")
    _key, secret = make_api_key(scope="write", account=account, name="racer")
    draft = make_invoice(account=account, lines=[("1", "5.00")])
    count = 10
    barrier = threading.Barrier(count)

    # when 10 clients each replace its lines with one line of their own, all at once
    def replace(index: int) -> requests.Response:
        session = requests.Session()
        barrier.wait(timeout=60)
        return session.patch(
            f"{live_server.url}/v1/invoices/{draft.pk}",
            json={"line_items": [{"description": f"line {index}", "price": "1.00"}]},
            headers={"Authorization": f"Bearer {secret}"},
            timeout=120,
        )

    with ThreadPoolExecutor(max_workers=count) as pool:
        responses = list(pool.map(replace, range(count)))

    # then each request either won or was refused, and the draft holds exactly one
    # client's line: the outcome of the requests run one after the other
    statuses = [r.status_code for r in responses]
    assert all(s in (200, 409) for s in statuses), statuses
    assert 200 in statuses
    lines = list(LineItem.objects.filter(invoice=draft).values_list("description", flat=True))
    assert len(lines) == 1, lines
    assert lines[0] in {f"line {i}" for i in range(count)}
    draft.refresh_from_db()
    assert draft.cost_without_vat == Decimal("1.00")


# 6 ------------------------------------------------------------------------------------------


def test_defect_06_a_hand_set_number_does_not_move_the_series(world, hostile):
    # given the series of this month, where the pending invoice took a number
    series, last = world.pending_invoice.friendly_id.rsplit("-", 1)
    counter_before = InvoiceCounter.objects.get(series=series).last_number
    assert counter_before == int(last)
    # when a key limited to the owner sets a huge number on its open invoice, and back
    for number in (f"{series}-99999999", f"{series}-{int(last) + 1:08d}"):
        hostile.send(
            "PUT",
            f"/api/invoices/{world.open_invoice.pk}.json",
            body=json.dumps({"friendly_id": number}).encode(),
            secret=world.owner_secret,
        )
    # then another account's next invoice in that series gets a number of the series,
    # not one past the hand-set number
    response = hostile.send(
        "PUT",
        f"/api/invoices/{world.other_invoice.pk}/state.json",
        body=json.dumps({"state": "pending"}).encode(),
        secret=world.other_secret,
    )
    assert response.status_code == 200, body_text(response)[:200]
    world.other_invoice.refresh_from_db()
    number = world.other_invoice.friendly_id
    assert number.startswith(f"{series}-") and len(number) == len(series) + 9, number
    assert int(number.rsplit("-", 1)[1]) <= counter_before + 2, number


@pytest.mark.parametrize(
    "number",
    ["2026-13-00000001", "2026-00-00000001", "２０２６-０１-０００００００１", "2026-01-0000000²"],
    ids=["month-13", "month-00", "fullwidth", "superscript"],
)
def test_defect_06_an_impossible_number_is_refused_without_a_counter(number, world, hostile):
    before = fingerprint()
    counters = set(InvoiceCounter.objects.values_list("series", flat=True))
    response = hostile.send(
        "PUT",
        f"/api/invoices/{world.open_invoice.pk}.json",
        body=json.dumps({"friendly_id": number}).encode(),
        secret=world.owner_secret,
    )
    assert response.status_code == 422, body_text(response)[:200]
    assert threescale_names(response, "friendly_id")
    assert set(InvoiceCounter.objects.values_list("series", flat=True)) == counters
    assert not changed(before, fingerprint())


def test_defect_06_the_period_cannot_diverge_from_the_number(world, hostile):
    # given a finalized invoice, numbered in this month's series
    invoice = make_invoice(account=world.owner, state=State.FINALIZED)
    series = invoice.friendly_id.rsplit("-", 1)[0]
    previous = (invoice.period - dt.timedelta(days=1)).replace(day=1)
    # when its period is moved to the month before
    response = hostile.send(
        "PUT",
        f"/api/invoices/{invoice.pk}.json",
        body=json.dumps({"period": previous.strftime("%Y-%m")}).encode(),
        secret=world.owner_secret,
    )
    # then either that is refused, or the number follows the period
    assert response.status_code in (200, 422), body_text(response)[:200]
    invoice.refresh_from_db()
    assert invoice.friendly_id.rsplit("-", 1)[0] == invoice_services.invoice_series(invoice.period)
    if response.status_code == 422:
        assert invoice.friendly_id.startswith(series)


def test_defect_06_renumbering_a_finalized_invoice_leaves_no_hole(world, hostile):
    # given a finalized invoice holding the latest number of its series
    invoice = make_invoice(account=world.owner, state=State.FINALIZED)
    series, number = invoice.friendly_id.rsplit("-", 1)
    # when a client gives it another number of that series
    hostile.send(
        "PUT",
        f"/api/invoices/{invoice.pk}.json",
        body=json.dumps({"friendly_id": f"{series}-{int(number) + 5:08d}"}).encode(),
        secret=world.owner_secret,
    )
    # then the numbers the series handed out still run 1..n without a hole
    taken = sorted(
        int(fid.rsplit("-", 1)[1])
        for fid in Invoice.objects.filter(friendly_id__startswith=f"{series}-").values_list(
            "friendly_id", flat=True
        )
    )
    assert taken == list(range(1, len(taken) + 1)), taken


# 7 ------------------------------------------------------------------------------------------


def test_defect_07_api_refuses_a_body_over_max_request_bytes(world, hostile, settings):
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    before = fingerprint()
    body = json.dumps({"name": "x" * (17 * 1024 * 1024), "cost": "1.00"}).encode()
    assert len(body) > limit
    response = hostile.send(
        "POST",
        f"/api/invoices/{world.open_invoice.pk}/line_items.json",
        body=body,
        secret=world.owner_secret,
    )
    assert response.status_code == 413, body_text(response)[:200]
    assert not changed(before, fingerprint())


# 8 ------------------------------------------------------------------------------------------


def test_defect_08_a_currency_switch_keeps_lines_and_totals_in_agreement(world, hostile):
    # given a USD account with an open invoice of two 10.40 lines
    account = AccountFactory(org_name="Switcher", currency="USD")
    invoice = make_invoice(account=account, lines=[("1", "10.40"), ("1", "10.40")])
    # when its currency becomes JPY and the invoice is issued
    switch = hostile.send(
        "PUT",
        f"/admin/api/accounts/{account.pk}.json",
        body=json.dumps({"currency": "JPY"}).encode(),
        secret=world.provider_secret,
    )
    assert switch.status_code in (200, 422), body_text(switch)[:200]
    issue = hostile.send(
        "PUT",
        f"/api/invoices/{invoice.pk}/state.json",
        body=json.dumps({"state": "pending"}).encode(),
        secret=world.provider_secret,
    )
    assert issue.status_code in (200, 422), body_text(issue)[:200]
    # then the lines and the totals agree, in the invoice's own currency
    invoice.refresh_from_db()
    lines = list(invoice.line_items.all())
    for line in lines:
        assert line.cost == quantize(line.cost, invoice.currency), (line.cost, invoice.currency)
    assert sum((line.cost for line in lines), Decimal(0)) == invoice.cost_without_vat
    shown = _json(
        hostile.send("GET", f"/v1/invoices/{invoice.pk}", secret=world.provider_secret, bearer=True)
    )
    assert sum(Decimal(str(item["subtotal"])) for item in shown["line_items"]) == Decimal(
        str(shown["subtotal"])
    )


# 9 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cost", "quantity"), [("100", "3000000"), ("0.01", "1000000000")], ids=["100x3M", "0.01x1G"]
)
def test_defect_09_a_line_cost_is_stored_as_sent_or_refused(cost, quantity, world, hostile):
    before = fingerprint()
    response = hostile.send(
        "POST",
        f"/api/invoices/{world.open_invoice.pk}/line_items.json",
        body=json.dumps({"name": "Bulk", "cost": cost, "quantity": quantity}).encode(),
        secret=world.owner_secret,
    )
    if response.status_code == 201:
        line = world.open_invoice.line_items.get(name="Bulk")
        assert line.cost == Decimal(cost), line.cost
    else:
        assert response.status_code == 422, body_text(response)[:200]
        assert threescale_names(response, "cost") or threescale_names(response, "quantity")
        assert not changed(before, fingerprint())


# 10 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["access%5Ftoken", "%61ccess_token", "provider%5Fkey", "access%5ftoken"],
)
def test_defect_10_a_percent_encoded_key_never_reaches_a_log(name, world, hostile, caplog):
    caplog.set_level(logging.DEBUG)
    secret = world.owner_secret
    encoded = quote(secret, safe="").replace("_", "%5F")
    query = f"{name}={encoded}"
    path = f"/api/invoices.json?{query}"
    response = hostile.send("GET", path)
    hostile.send("GET", f"/api/invoices/999999999.json?{query}")  # a 404, which Django logs
    # The request line, logged the way the development server and access logs write it.
    logging.getLogger("django.server").info(
        '"%s" %s %s', f"GET {path} HTTP/1.1", str(response.status_code), "123"
    )
    # The secret part (after `bk_<prefix>_`), as sent and as decoded.
    tail = secret.split("_", 2)[2]
    forms = {tail, quote(tail, safe=""), quote(tail, safe="").replace("_", "%5F")}
    for record in caplog.records:
        text = record.getMessage()
        assert not any(form in text for form in forms), text[:200]


# 11 -----------------------------------------------------------------------------------------


def test_defect_11_payment_transaction_xml_never_echoes_the_card_token(world, hostile):
    token = "tok_live_4f9a8b7c6d5e"
    account = AccountFactory(org_name="Card Holder", card_token=token)
    invoice = make_invoice(account=account, state=State.PENDING)
    hostile.send("POST", f"/api/invoices/{invoice.pk}/charge.json", secret=world.provider_secret)
    assert PaymentTransaction.objects.filter(invoice=invoice).exists()
    for suffix in ("xml", "json"):
        response = hostile.send(
            "GET",
            f"/api/invoices/{invoice.pk}/payment_transactions.{suffix}",
            secret=world.provider_secret,
        )
        assert response.status_code == 200
        assert token not in body_text(response), suffix


# 12 -----------------------------------------------------------------------------------------


def _chunked(path: str, secret: str, payload: dict) -> dict:
    from django.test.client import FakePayload

    # What gunicorn hands Django for a chunked request: the de-chunked body, no Content-Length.
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "CONTENT_TYPE": "application/json",
        "HTTP_TRANSFER_ENCODING": "chunked",
        "wsgi.input_terminated": True,  # gunicorn's promise that the input ends with the body
        "HTTP_AUTHORIZATION": f"Bearer {secret}",
        "wsgi.input": FakePayload(json.dumps(payload).encode()),
    }


def test_defect_12_a_chunked_issue_body_is_read_or_refused(world, hostile):
    due = timezone.now().date() + dt.timedelta(days=3)
    before = fingerprint()
    response = hostile.send_environ(
        _chunked(
            f"/v1/invoices/{world.open_invoice.pk}/issue",
            world.owner_secret,
            {"due_date": due.isoformat()},
        )
    )
    world.open_invoice.refresh_from_db()
    if response.status_code == 411:
        assert not changed(before, fingerprint())
    else:
        assert response.status_code == 200, body_text(response)[:200]
        assert world.open_invoice.due_on == due


def test_defect_12_a_chunked_mark_paid_body_is_read_or_refused(world, hostile):
    before = fingerprint()
    response = hostile.send_environ(
        _chunked(
            f"/v1/invoices/{world.pending_invoice.pk}/mark_paid",
            world.owner_secret,
            {"method": "other", "reference": "WIRE-42"},
        )
    )
    if response.status_code == 411:
        assert not changed(before, fingerprint())
    else:
        assert response.status_code == 200, body_text(response)[:200]
        payment = PaymentTransaction.objects.get(invoice=world.pending_invoice, success=True)
        assert (payment.method, payment.reference) == ("other", "WIRE-42")


# 13 -----------------------------------------------------------------------------------------


def test_defect_13_a_back_dated_issue_does_not_back_date_the_event(world, hostile):
    started = timezone.now()
    before = fingerprint()
    response = hostile.send(
        "POST",
        f"/v1/invoices/{world.open_invoice.pk}/issue",
        body=json.dumps({"date": "2000-01-01"}).encode(),
        secret=world.owner_secret,
        bearer=True,
    )
    if response.status_code == 400:
        # Too far back for this invoice: refused, naming the date.
        assert v1_names(response, "date")
        assert not changed(before, fingerprint())
        return
    assert response.status_code == 200, body_text(response)[:200]
    world.open_invoice.refresh_from_db()
    assert world.open_invoice.issued_on == dt.date(2000, 1, 1)  # the date is data
    event = InvoiceEvent.objects.filter(
        invoice=world.open_invoice, kind=InvoiceEvent.Kind.TRANSITION, to_state=State.PENDING
    ).get()
    assert event.created_at >= started - dt.timedelta(seconds=5), event.created_at
    assert event.created_at >= world.open_invoice.created_at


# also seen ----------------------------------------------------------------------------------


def test_a_soft_deleted_accounts_pending_invoice_cannot_be_charged(world, hostile):
    account = AccountFactory(org_name="Gone Inc", card_token="tok_visa")
    invoice = make_invoice(account=account, state=State.PENDING)
    account_services.account_soft_delete(account=account)
    assert Account.objects.get(pk=account.pk).is_deleted
    before = fingerprint()
    api = hostile.send(
        "POST", f"/api/invoices/{invoice.pk}/charge.json", secret=world.provider_secret
    )
    v1 = hostile.send(
        "POST", f"/v1/invoices/{invoice.pk}/charge", secret=world.provider_secret, bearer=True
    )
    assert 400 <= api.status_code < 500, body_text(api)[:200]
    assert 400 <= v1.status_code < 500, body_text(v1)[:200]
    assert not PaymentTransaction.objects.filter(invoice=invoice).exists()
    assert Invoice.objects.get(pk=invoice.pk).state == State.PENDING
    assert not changed(before, fingerprint())
