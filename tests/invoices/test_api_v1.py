"""The /v1 invoices API: auth matrix, representation, create, list, edit and state actions."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Account
from accounts.services import api_key_revoke
from invoices import services
from invoices.exceptions import InvoiceValidationError
from invoices.models import Invoice, InvoiceEvent, LineItem, PaymentTransaction
from tests.factories import ACTOR, AccountFactory, make_api_key, make_invoice
from tests.support.clock import relative_dates, today

State = Invoice.State


def client_for(secret: str | None) -> APIClient:
    client = APIClient()
    if secret is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def send(client: APIClient, method: str, path: str, body=None):
    if body is None:
        return getattr(client, method)(path)
    return getattr(client, method)(path, data=json.dumps(body), content_type="application/json")


def counts() -> tuple[int, int, int, int]:
    return (
        Invoice.objects.count(),
        LineItem.objects.count(),
        InvoiceEvent.objects.count(),
        PaymentTransaction.objects.count(),
    )


def seed_body(customer_id: int, **overrides) -> dict:
    body = {
        "customer_id": customer_id,
        "amount": 100.0,
        "date": today().isoformat(),
        "due_date": (today() + dt.timedelta(days=30)).isoformat(),
    }
    body.update(overrides)
    return body


# --- the auth matrix ------------------------------------------------------------------

# name -> (method, path, body, state the invoice needs, status for the owner's write key)
ENDPOINTS = {
    "list": ("get", "/v1/invoices", None, State.OPEN, 200),
    "create": ("post", "/v1/invoices", "seed", None, 201),
    "retrieve": ("get", "/v1/invoices/{id}", None, State.OPEN, 200),
    "patch": ("patch", "/v1/invoices/{id}", {"description": "x", "amount": 5}, State.OPEN, 200),
    "put": ("put", "/v1/invoices/{id}", "put", State.OPEN, 200),
    "delete": ("delete", "/v1/invoices/{id}", None, State.OPEN, 204),
    "issue": ("post", "/v1/invoices/{id}/issue", None, State.OPEN, 200),
    "cancel": ("post", "/v1/invoices/{id}/cancel", None, State.OPEN, 200),
    "charge": ("post", "/v1/invoices/{id}/charge", None, State.PENDING, 200),
    "mark_paid": ("post", "/v1/invoices/{id}/mark_paid", None, State.PENDING, 200),
}
WRITES = {name for name, (method, *_rest) in ENDPOINTS.items() if method != "get"}


def _request(name: str, owner, secret: str | None):
    method, path, body, state, _ = ENDPOINTS[name]
    invoice = make_invoice(account=owner.account, state=state) if state else None
    if body == "seed":
        body = seed_body(owner.account.pk)
    elif body == "put":
        body = {"date": today().isoformat(), "amount": 7}
    path = path.format(id=invoice.pk if invoice else 0)
    return send(client_for(secret), method, path, body), invoice


@pytest.mark.parametrize("name", ENDPOINTS)
def test_no_key_is_401_with_a_bearer_challenge(owner, name):
    response, _ = _request(name, owner, None)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["error"]["code"] == "unauthenticated"


@pytest.mark.parametrize("name", ENDPOINTS)
@pytest.mark.parametrize("kind", ["garbage", "unknown", "revoked", "expired", "basic"])
def test_bad_keys_are_401(owner, name, kind):
    if kind == "garbage":
        secret = "not-a-key"
    elif kind == "unknown":
        secret = "bk_00000000_" + "a" * 43
    elif kind == "revoked":
        key, secret = make_api_key(scope="write", account=owner.account)
        api_key_revoke(api_key=key)
    elif kind == "expired":
        _, secret = make_api_key(
            scope="write",
            account=owner.account,
            expires_at=timezone.now() - dt.timedelta(seconds=1),
        )
    if kind == "basic":
        method, path, body, state, _ = ENDPOINTS[name]
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION="Basic dXNlcjpwYXNz")
        response = send(client, method, path.format(id=1), None)
    else:
        response, _ = _request(name, owner, secret)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["error"]["code"] == "unauthenticated"


@pytest.mark.parametrize("name", ENDPOINTS)
def test_read_key_reads_but_cannot_write(owner, read_key, name):
    before = counts()
    response, _ = _request(name, owner, read_key[1])
    if name in WRITES:
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "forbidden"
        assert counts()[0] == before[0] + (0 if ENDPOINTS[name][3] is None else 1)
    else:
        assert response.status_code == 200


@pytest.mark.parametrize("name", ENDPOINTS)
def test_owner_write_key_succeeds(owner, name):
    response, _ = _request(name, owner, owner.secret)
    assert response.status_code == ENDPOINTS[name][4], response.content


@pytest.mark.parametrize("name", ENDPOINTS)
def test_provider_wide_write_key_succeeds(owner, admin_key, name):
    response, _ = _request(name, owner, admin_key[1])
    assert response.status_code == ENDPOINTS[name][4], response.content


@pytest.mark.parametrize("name", ENDPOINTS)
def test_other_accounts_key_never_sees_the_owners_invoices(owner, other, name):
    before = counts()
    method, path, body, state, _ = ENDPOINTS[name]
    response, invoice = _request(name, owner, other.secret)
    if name == "list":
        assert response.status_code == 200
        assert response.json() == []
        assert response["X-Total-Count"] == "0"
    elif name == "create":
        # The owner's customer does not exist as far as the other key knows.
        assert response.status_code == 400
        assert response.json()["error"]["details"] == {"customer_id": ["does not exist"]}
        assert counts() == before
    else:
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
        fresh = Invoice.objects.get(pk=invoice.pk)
        assert fresh.state == state


# --- the representation ---------------------------------------------------------------


@pytest.fixture
def paid_invoice(owner) -> Invoice:
    Account.objects.filter(pk=owner.account.pk).update(
        org_name="John Doe",
        billing_email="john.doe@example.com",
        address_line1="123 Main St",
        address_line2="Suite 4",
        city="Anytown",
        address_state="CA",
        zip="12345",
        country="US",
        vat_rate=Decimal("10.00"),
        card_token="tok_visa",
        card_exp_month=12,
        card_exp_year=2030,
    )
    owner.account.refresh_from_db()
    invoice = make_invoice(account=owner.account, lines=[("2", "50.00")], state=State.PENDING)
    services.invoice_charge(invoice=invoice, actor=ACTOR)
    # The frozen buyer is what an issued invoice shows, whatever the account becomes.
    Account.objects.filter(pk=owner.account.pk).update(org_name="Renamed Later")
    invoice.refresh_from_db()
    return invoice


def test_every_field_of_a_paid_invoice_with_a_card_payment(owner, paid_invoice):
    response = client_for(owner.secret).get(f"/v1/invoices/{paid_invoice.pk}")
    assert response.status_code == 200
    body = json.loads(response.content, parse_float=Decimal)
    line = paid_invoice.line_items.get()
    payment = PaymentTransaction.objects.get(invoice=paid_invoice, success=True)
    assert body["created_at"] and body["updated_at"]
    del body["created_at"], body["updated_at"]
    assert body == {
        "id": paid_invoice.pk,
        "customer_id": owner.account.pk,
        "amount": Decimal("110.00"),
        "date": paid_invoice.issued_on.isoformat(),
        "due_date": paid_invoice.due_on.isoformat(),
        "number": paid_invoice.friendly_id,
        "period": paid_invoice.period.strftime("%Y-%m"),
        "currency": "USD",
        "subtotal": Decimal("100.00"),
        "tax": Decimal("10.00"),
        "total": Decimal("110.00"),
        "status": "paid",
        "amount_paid": Decimal("110.00"),
        "amount_credited": Decimal("0.00"),
        "credit_applied": Decimal("0.00"),
        "amount_due": Decimal("0.00"),
        "line_items": [
            {
                "id": line.pk,
                "description": "Item",
                "quantity": 2,
                "price": Decimal("50.00"),
                "subtotal": Decimal("100.00"),
                # Frozen at issue: the invoice's category and rate.
                "vat_category": "S",
                "vat_rate": Decimal("10.00"),
            }
        ],
        "customer": {
            "id": owner.account.pk,
            "name": "John Doe",
            "email": "john.doe@example.com",
            "address": {
                "street": "123 Main St, Suite 4",
                "city": "Anytown",
                "state": "CA",
                "zip": "12345",
                "country": "US",
            },
        },
        "payment": {
            "id": payment.pk,
            "date": payment.created_at.isoformat().replace("+00:00", "Z"),
            "amount": Decimal("110.00"),
            "currency": "USD",
            "method": "credit_card",
            "reference": payment.reference,
            "card": {"type": "Visa", "last4": "4242", "exp_month": 12, "exp_year": 2030},
        },
    }
    # Money leaves as exact number literals, never strings or float artefacts.
    assert b'"amount":110.00' in response.content
    assert b'"quantity":2,' in response.content


def test_a_draft_shows_the_live_customer_no_number_and_no_payment(owner):
    invoice = make_invoice(account=owner.account)
    body = client_for(owner.secret).get(f"/v1/invoices/{invoice.pk}").json()
    assert body["status"] == "open"
    assert body["number"] is None
    assert body["due_date"] is None
    assert body["payment"] is None
    assert body["date"] == invoice.created_at.date().isoformat()
    assert body["customer"]["name"] == "Owner Inc"


def test_a_bank_transfer_payment_has_no_card(owner):
    invoice = make_invoice(account=owner.account, state=State.PENDING)
    response = send(
        client_for(owner.secret),
        "post",
        f"/v1/invoices/{invoice.pk}/mark_paid",
        {"method": "bank_transfer", "reference": "TRX-1"},
    )
    assert response.status_code == 200
    payment = response.json()["payment"]
    assert payment["method"] == "bank_transfer"
    assert payment["reference"] == "TRX-1"
    assert payment["card"] is None


def test_amounts_have_no_float_drift(owner):
    response = send(
        client_for(owner.secret),
        "post",
        "/v1/invoices",
        seed_body(
            owner.account.pk,
            amount=None,
            line_items=[
                {"description": "a", "price": 0.1},
                {"description": "b", "price": 0.2},
            ],
        )
        | {"amount": 0.3},
    )
    assert response.status_code == 201, response.content
    assert b'"total":0.30' in response.content
    assert b"0.30000000000000004" not in response.content


# --- create -------------------------------------------------------------------------------


def test_create_with_the_seeds_fields_makes_an_issued_invoice(owner):
    due = today() + dt.timedelta(days=17)
    response = send(
        client_for(owner.secret),
        "post",
        "/v1/invoices",
        seed_body(owner.account.pk, due_date=due.isoformat()),
    )
    assert response.status_code == 201, response.content
    body = response.json()
    invoice = Invoice.objects.get(pk=body["id"])
    assert response["Location"].endswith(f"/v1/invoices/{invoice.pk}")
    assert invoice.state == State.PENDING
    assert invoice.issued_on == today()
    assert invoice.due_on == due
    assert invoice.friendly_id
    assert invoice.cost == Decimal("100.00")
    assert (body["id"], body["customer_id"], body["amount"], body["date"], body["due_date"]) == (
        invoice.pk,
        owner.account.pk,
        100.0,
        today().isoformat(),
        due.isoformat(),
    )
    assert body["line_items"][0]["subtotal"] == 100.0
    assert InvoiceEvent.objects.filter(invoice=invoice, to_state=State.PENDING).exists()


def test_create_with_a_past_date_is_issued_on_that_date(owner):
    day = (today().replace(day=1) - dt.timedelta(days=40)).replace(day=15)
    response = send(
        client_for(owner.secret),
        "post",
        "/v1/invoices",
        seed_body(
            owner.account.pk,
            date=day.isoformat(),
            due_date=(day + dt.timedelta(days=30)).isoformat(),
        ),
    )
    assert response.status_code == 201, response.content
    invoice = Invoice.objects.get(pk=response.json()["id"])
    assert invoice.issued_on == day
    assert invoice.period == day.replace(day=1)
    assert invoice.friendly_id.startswith(day.strftime("%Y-%m"))


def test_create_with_line_items_and_vat(owner):
    Account.objects.filter(pk=owner.account.pk).update(vat_rate=Decimal("21"))
    response = send(
        client_for(owner.secret),
        "post",
        "/v1/invoices",
        seed_body(
            owner.account.pk,
            amount=125.5,
            currency="USD",
            line_items=[
                {"description": "Plan", "quantity": 2, "price": 50},
                {"description": "Support", "price": "25.50"},
            ],
        ),
    )
    assert response.status_code == 201, response.content
    body = response.json(parse_float=Decimal)
    assert body["subtotal"] == Decimal("125.50")
    assert body["tax"] == Decimal("26.36")
    assert body["total"] == body["amount"] == Decimal("151.86")
    assert [line["description"] for line in body["line_items"]] == ["Plan", "Support"]


def test_create_a_draft(owner):
    response = send(
        client_for(owner.secret),
        "post",
        "/v1/invoices",
        {"customer_id": owner.account.pk, "draft": True, "amount": 12},
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "open"
    assert body["number"] is None
    assert body["total"] == 12.0


BAD_CREATES = [
    ("customer_id", {"customer_id": "abc"}),
    ("customer_id", {"customer_id": True}),
    ("customer_id", {"customer_id": 1.5}),
    ("customer_id", {"customer_id": None}),
    ("customer_id", {"customer_id": 99999999}),
    ("amount", {"amount": -1}),
    ("amount", {"amount": "abc"}),
    ("amount", {"amount": True}),
    ("amount", {"amount": [100]}),
    ("amount", {"amount": 10**13}),
    ("amount", {"amount": 100.001}),
    ("amount", {"amount": None}),
    ("date", {"date": "2026-02-30"}),
    ("date", {"date": "03/01/2023"}),
    ("date", {"date": 20230301}),
    ("date", {"date": "2026-13-01"}),
    (
        "date",
        {
            "date": "today+3",
            "due_date": "today+30",
        },
    ),
    ("date", {"date": "1999-12-31"}),
    ("due_date", {"due_date": "today-1"}),
    ("due_date", {"due_date": "tomorrow"}),
    ("currency", {"currency": "EUR"}),
    ("draft", {"draft": "yes"}),
    ("line_items[0].price", {"line_items": [{"description": "x", "price": -5}]}),
    ("line_items[0].description", {"line_items": [{"price": 5}]}),
    ("line_items[0].quantity", {"line_items": [{"description": "x", "price": 5, "quantity": 0}]}),
    ("line_items", {"line_items": []}),
    ("amount", {"line_items": [{"description": "x", "price": 5}], "amount": 6}),
    ("colour", {"colour": "blue"}),
]


@pytest.mark.parametrize(("field", "change"), BAD_CREATES, ids=[f"{f}-{c}" for f, c in BAD_CREATES])
def test_bad_create_input_is_400_naming_the_field_and_writes_nothing(owner, field, change):
    body = seed_body(owner.account.pk)
    body.update(relative_dates(change))
    body = {k: v for k, v in body.items() if not (v is None and k == "amount")}
    if change == {"amount": None}:
        body.pop("amount", None)
    before = counts()
    response = send(client_for(owner.secret), "post", "/v1/invoices", body)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["details"], error
    assert counts() == before


@pytest.mark.parametrize("literal", ["1e400", "NaN", "Infinity", "-Infinity", "1e-400"])
def test_non_finite_and_absurd_numbers_are_400_on_the_field(owner, literal):
    raw = (
        f'{{"customer_id": {owner.account.pk}, "amount": {literal}, '
        f'"date": "{today()}", "due_date": "{today()}"}}'
    )
    before = counts()
    response = client_for(owner.secret).post("/v1/invoices", raw, content_type="application/json")
    assert response.status_code == 400, response.content
    assert "amount" in response.json()["error"]["details"]
    assert counts() == before


def test_other_accounts_customer_is_400_does_not_exist(owner, other):
    before = counts()
    response = send(client_for(owner.secret), "post", "/v1/invoices", seed_body(other.account.pk))
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"customer_id": ["does not exist"]}
    assert counts() == before


def test_deleted_customer_does_not_exist(admin_key):
    account = AccountFactory(state=Account.State.DELETED, deleted_at=timezone.now())
    response = send(client_for(admin_key[1]), "post", "/v1/invoices", seed_body(account.pk))
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"customer_id": ["does not exist"]}


def test_every_missing_required_field_is_named(owner):
    response = send(client_for(owner.secret), "post", "/v1/invoices", {})
    assert response.status_code == 400
    assert set(response.json()["error"]["details"]) == {"customer_id"}
    response = send(
        client_for(owner.secret), "post", "/v1/invoices", {"customer_id": owner.account.pk}
    )
    assert set(response.json()["error"]["details"]) == {"amount", "date", "due_date"}


@pytest.mark.parametrize(
    ("raw", "content_type", "status", "code"),
    [
        ("{not json", "application/json", 400, "malformed_request"),
        ('{"a": 1', "application/json", 400, "malformed_request"),
        ("[1, 2]", "application/json", 400, "validation_error"),
        ('"text"', "application/json", 400, "validation_error"),
        ("customer_id=1", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        ("hello", "text/plain", 415, "unsupported_media_type"),
    ],
)
def test_bodies_that_are_not_a_json_object(owner, raw, content_type, status, code):
    before = counts()
    response = client_for(owner.secret).post("/v1/invoices", raw, content_type=content_type)
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code
    assert counts() == before


# --- list -----------------------------------------------------------------------------------


@pytest.fixture
def many_invoices(owner) -> list[Invoice]:
    states = [State.OPEN, State.PENDING, State.PAID, State.CANCELLED, State.UNPAID]
    invoices = []
    for index, state in enumerate(states):
        invoices.append(
            make_invoice(
                account=owner.account,
                state=state,
                lines=[("1", "10.00"), ("2", f"{index + 1}.00")],
                now=timezone.now() - dt.timedelta(seconds=len(states) - index),
            )
        )
    return invoices


def test_list_is_the_seeds_bare_array_newest_first(owner, many_invoices):
    response = client_for(owner.secret).get("/v1/invoices")
    assert response.status_code == 200
    body = response.json()
    assert isinstance(body, list)
    assert [item["id"] for item in body] == [inv.pk for inv in reversed(many_invoices)]
    assert {"id", "customer_id", "amount", "date", "due_date"} <= set(body[0])
    assert response["X-Total-Count"] == "5"


def test_pagination_headers(owner, many_invoices):
    response = client_for(owner.secret).get(
        "/v1/invoices?per_page=2&page=2&state=open,pending,paid,cancelled,unpaid"
    )
    assert len(response.json()) == 2
    assert response["X-Total-Count"] == "5"
    links = dict(
        (part.split("; ")[1].split('"')[1], part.split("; ")[0].strip("<>"))
        for part in response["Link"].split(", ")
    )
    assert set(links) == {"first", "prev", "next", "last"}
    assert "page=1" in links["first"] and "page=3" in links["last"]
    assert "page=1" in links["prev"] and "page=3" in links["next"]
    assert all("per_page=2" in url and "state=" in url for url in links.values())
    last = client_for(owner.secret).get("/v1/invoices?per_page=2&page=3")
    assert len(last.json()) == 1
    assert 'rel="next"' not in last["Link"]
    beyond = client_for(owner.secret).get("/v1/invoices?per_page=2&page=9")
    assert beyond.json() == []


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("per_page=0", "per_page"),
        ("per_page=101", "per_page"),
        ("per_page=x", "per_page"),
        ("page=0", "page"),
        ("page=-1", "page"),
        ("state=bogus", "state"),
        ("status=paid,bogus", "status"),
        ("month=2026-13", "month"),
        ("month=March", "month"),
        ("customer_id=abc", "customer_id"),
        ("issued_from=2026-02-30", "issued_from"),
        ("ordering=password", "ordering"),
    ],
)
def test_bad_list_parameters_are_400_naming_the_parameter(owner, query, param):
    response = client_for(owner.secret).get(f"/v1/invoices?{query}")
    assert response.status_code == 400, response.content
    assert param in response.json()["error"]["details"]


def test_list_filters(owner, other, admin_key, many_invoices):
    client = client_for(owner.secret)
    ids = lambda r: sorted(item["id"] for item in r.json())  # noqa: E731
    by_state = {inv.state: inv.pk for inv in many_invoices}
    assert ids(client.get("/v1/invoices?state=paid")) == [by_state["paid"]]
    assert ids(client.get("/v1/invoices?status=paid&status=open")) == sorted(
        [by_state["paid"], by_state["open"]]
    )
    assert ids(client.get("/v1/invoices?state=paid,unpaid")) == sorted(
        [by_state["paid"], by_state["unpaid"]]
    )
    month = today().strftime("%Y-%m")
    assert len(client.get(f"/v1/invoices?month={month}").json()) == 5
    assert client.get("/v1/invoices?month=2001-01").json() == []
    issued = [inv.pk for inv in many_invoices if inv.issued_on]
    assert ids(client.get(f"/v1/invoices?issued_from={today()}&issued_to={today()}")) == sorted(
        issued
    )
    make_invoice(account=other.account)
    admin = client_for(admin_key[1])
    assert len(admin.get("/v1/invoices").json()) == 6
    assert ids(admin.get(f"/v1/invoices?customer_id={owner.account.pk}")) == sorted(
        inv.pk for inv in many_invoices
    )
    amounts = [item["amount"] for item in client.get("/v1/invoices?ordering=amount").json()]
    assert amounts == sorted(amounts)
    assert [i["id"] for i in client.get("/v1/invoices?ordering=id").json()] == sorted(
        inv.pk for inv in many_invoices
    )


def test_query_count_does_not_grow_with_the_page_size(owner, many_invoices):
    pending = next(inv for inv in many_invoices if inv.state == State.PENDING)
    services.invoice_charge(invoice=pending, actor=ACTOR)  # a payment with a card to show
    client = client_for(owner.secret)
    client.get("/v1/invoices")  # warm up: records the key's last use once
    with CaptureQueriesContext(connection) as one:
        assert len(client.get("/v1/invoices?per_page=1").json()) == 1
    with CaptureQueriesContext(connection) as hundred:
        assert len(client.get("/v1/invoices?per_page=100").json()) == 5
    # (a page shorter than per_page tells the total itself: no count)
    assert len(hundred) <= len(one), [q["sql"] for q in hundred.captured_queries]


# --- edit and delete drafts ------------------------------------------------------------------


def test_patch_a_draft_replaces_its_lines(owner):
    invoice = make_invoice(account=owner.account)
    response = send(
        client_for(owner.secret),
        "patch",
        f"/v1/invoices/{invoice.pk}",
        {"line_items": [{"description": "New", "quantity": 3, "price": 1.5}]},
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert [(li["description"], li["quantity"], li["price"]) for li in body["line_items"]] == [
        ("New", 3, 1.5)
    ]
    assert body["total"] == 4.5


def test_put_needs_the_whole_draft(owner):
    invoice = make_invoice(account=owner.account)
    response = send(client_for(owner.secret), "put", f"/v1/invoices/{invoice.pk}", {"amount": 3})
    assert response.status_code == 400
    assert "date" in response.json()["error"]["details"]
    month = today().replace(day=1) - dt.timedelta(days=1)
    response = send(
        client_for(owner.secret),
        "put",
        f"/v1/invoices/{invoice.pk}",
        {"date": month.isoformat(), "amount": 3, "description": "Fee"},
    )
    assert response.status_code == 200, response.content
    assert response.json()["period"] == month.strftime("%Y-%m")
    assert [li["description"] for li in response.json()["line_items"]] == ["Fee"]


def test_patch_cannot_move_a_draft_to_another_customer(owner, other):
    invoice = make_invoice(account=owner.account)
    response = send(
        client_for(owner.secret),
        "patch",
        f"/v1/invoices/{invoice.pk}",
        {"customer_id": other.account.pk},
    )
    assert response.status_code == 400
    assert "customer_id" in response.json()["error"]["details"]


@pytest.mark.parametrize("method", ["patch", "put", "delete"])
@pytest.mark.parametrize("state", [State.PENDING, State.PAID, State.CANCELLED, State.FINALIZED])
def test_only_open_invoices_can_be_edited_or_deleted(owner, method, state):
    invoice = make_invoice(account=owner.account, state=state)
    before = counts()
    body = None if method == "delete" else {"date": today().isoformat(), "amount": 1}
    response = send(client_for(owner.secret), method, f"/v1/invoices/{invoice.pk}", body)
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "invalid_state"
    assert f"is {state}" in error["message"]
    assert "cancel" in error["message"].lower()
    assert counts() == before


def test_delete_a_draft(owner):
    invoice = make_invoice(account=owner.account)
    response = client_for(owner.secret).delete(f"/v1/invoices/{invoice.pk}")
    assert response.status_code == 204
    assert not Invoice.objects.filter(pk=invoice.pk).exists()


# --- state actions ---------------------------------------------------------------------------


def test_issue_with_a_due_date(owner):
    invoice = make_invoice(account=owner.account)
    due = today() + dt.timedelta(days=5)
    response = send(
        client_for(owner.secret),
        "post",
        f"/v1/invoices/{invoice.pk}/issue",
        {"due_date": due.isoformat()},
    )
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "pending"
    assert response.json()["due_date"] == due.isoformat()
    again = client_for(owner.secret).post(f"/v1/invoices/{invoice.pk}/issue")
    assert again.status_code == 409
    assert "is pending" in again.json()["error"]["message"]


def test_issue_due_date_before_issue_date_is_400(owner):
    invoice = make_invoice(account=owner.account)
    response = send(
        client_for(owner.secret),
        "post",
        f"/v1/invoices/{invoice.pk}/issue",
        {"due_date": (today() - dt.timedelta(days=1)).isoformat()},
    )
    assert response.status_code == 400
    assert "due_date" in response.json()["error"]["details"]
    assert Invoice.objects.get(pk=invoice.pk).state == State.OPEN


def test_cancel_with_a_reason_and_not_twice(owner):
    invoice = make_invoice(account=owner.account, state=State.PENDING)
    response = send(
        client_for(owner.secret), "post", f"/v1/invoices/{invoice.pk}/cancel", {"reason": "dup"}
    )
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert InvoiceEvent.objects.filter(invoice=invoice, to_state="cancelled", reason="dup").exists()
    assert client_for(owner.secret).post(f"/v1/invoices/{invoice.pk}/cancel").status_code == 409


def test_a_paid_invoice_cannot_be_cancelled(owner):
    invoice = make_invoice(account=owner.account, state=State.PAID)
    response = client_for(owner.secret).post(f"/v1/invoices/{invoice.pk}/cancel")
    assert response.status_code == 409
    assert "paid" in response.json()["error"]["message"]


def test_charge_succeeds_with_a_good_card(owner):
    invoice = make_invoice(account=owner.account, state=State.PENDING)
    response = client_for(owner.secret).post(f"/v1/invoices/{invoice.pk}/charge")
    assert response.status_code == 200
    assert response.json()["status"] == "paid"
    assert response.json()["payment"]["card"]["last4"] == "4242"


def test_a_declined_charge_is_402_and_recorded(owner):
    Account.objects.filter(pk=owner.account.pk).update(card_token="tok_chargeDeclined")
    invoice = make_invoice(account=owner.account, state=State.PENDING)
    response = client_for(owner.secret).post(f"/v1/invoices/{invoice.pk}/charge")
    assert response.status_code == 402
    error = response.json()["error"]
    assert error["code"] == "payment_failed"
    assert "declined" in error["message"]
    attempt = PaymentTransaction.objects.get(invoice=invoice)
    assert attempt.success is False
    assert Invoice.objects.get(pk=invoice.pk).state == State.UNPAID


def test_charging_a_draft_is_409(owner):
    invoice = make_invoice(account=owner.account)
    response = client_for(owner.secret).post(f"/v1/invoices/{invoice.pk}/charge")
    assert response.status_code == 409
    assert "issue it first" in response.json()["error"]["message"]
    assert not PaymentTransaction.objects.exists()


def test_charge_takes_no_body(owner):
    invoice = make_invoice(account=owner.account, state=State.PENDING)
    response = send(
        client_for(owner.secret), "post", f"/v1/invoices/{invoice.pk}/charge", {"amount": 1}
    )
    assert response.status_code == 400
    assert "amount" in response.json()["error"]["details"]


def test_mark_paid_twice_is_409(owner):
    invoice = make_invoice(account=owner.account, state=State.PENDING)
    client = client_for(owner.secret)
    assert client.post(f"/v1/invoices/{invoice.pk}/mark_paid").status_code == 200
    response = client.post(f"/v1/invoices/{invoice.pk}/mark_paid")
    assert response.status_code == 409
    assert PaymentTransaction.objects.filter(invoice=invoice).count() == 1


def test_mark_paid_rejects_an_unknown_method(owner):
    invoice = make_invoice(account=owner.account, state=State.PENDING)
    response = send(
        client_for(owner.secret),
        "post",
        f"/v1/invoices/{invoice.pk}/mark_paid",
        {"method": "cash-in-envelope"},
    )
    assert response.status_code == 400
    assert "method" in response.json()["error"]["details"]
    assert Invoice.objects.get(pk=invoice.pk).state == State.PENDING


def test_unknown_invoice_and_non_numeric_ids_are_404(owner):
    client = client_for(owner.secret)
    assert client.get("/v1/invoices/999999").status_code == 404
    assert client.get("/v1/invoices/abc").status_code == 404


def test_a_draft_may_be_for_a_coming_month(owner):
    month = (today().replace(day=1) + dt.timedelta(days=40)).replace(day=1)
    response = send(
        client_for(owner.secret),
        "post",
        "/v1/invoices",
        {"customer_id": owner.account.pk, "draft": True, "date": month.isoformat(), "amount": 1},
    )
    assert response.status_code == 201, response.content
    assert response.json()["period"] == month.strftime("%Y-%m")


def test_a_service_refusal_inside_create_rolls_everything_back(owner, monkeypatch):
    # given: the issue step refuses after the invoice and its line were written
    def refuse(**kwargs):
        raise InvoiceValidationError("refused at issue", field="due_on")

    monkeypatch.setattr(services, "invoice_issue", refuse)
    before = counts()
    # when
    response = send(client_for(owner.secret), "post", "/v1/invoices", seed_body(owner.account.pk))
    # then: the field is named and the draft and its line are gone with the transaction
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"due_date": ["refused at issue"]}
    assert counts() == before


def test_a_month_the_service_refuses_is_400_on_date(owner):
    too_far = (today().replace(day=1) + dt.timedelta(days=500)).replace(day=1)
    before = counts()
    response = send(
        client_for(owner.secret),
        "post",
        "/v1/invoices",
        {"customer_id": owner.account.pk, "draft": True, "date": too_far.isoformat(), "amount": 1},
    )
    assert response.status_code == 400
    assert "date" in response.json()["error"]["details"]
    assert counts() == before


@pytest.mark.parametrize("method", ["options", "head"])
def test_options_and_head_answer(owner, method):
    response = getattr(client_for(owner.secret), method)("/v1/invoices")
    assert response.status_code == 200
