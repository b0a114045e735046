"""Who may do what: every endpoint of both APIs, the PDF links, the admin and the staff pages,
against every kind of caller, in one table.

API callers: no key, a malformed key, a revoked key, an expired key, a read key and a
write key of the owner account, and the write key of another account. The other
account's key must get 404 for the owner's objects (or an empty list for a filter) and
never a byte of the owner's data. Staff callers: nobody, a user who is not staff, the
Auditor group (view only) and the Finance group (view and act).
"""

from __future__ import annotations

import datetime as dt
import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from urllib.parse import urlparse

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Account
from accounts.services import api_key_revoke
from invoices import services
from invoices.models import Invoice, LineItem, PaymentTransaction
from tests.factories import ACTOR, AccountFactory, make_api_key, make_invoice
from usage import services as usage_services

State = Invoice.State
OWNER_ORG = "Owner Matrix Corp"
OTHER_ORG = "Other Matrix GmbH"
ACCESS_DENIED = {"error": "Access denied"}
NO_PERMISSION = {"error": "Your access token does not have the correct permissions"}


@dataclass
class World:
    owner: Account
    other: Account
    open: Invoice
    pending: Invoice
    paid: Invoice
    line: LineItem
    keys: dict[str, str | None]

    def leaks(self, body: bytes) -> list[str]:
        """Pieces of the owner's data found in a body meant for someone else."""
        text = body.decode("utf-8", "replace")
        needles = [OWNER_ORG, self.owner.billing_email, "usage-owner-"]
        needles += [i.friendly_id for i in (self.pending, self.paid) if i.friendly_id]
        return [needle for needle in needles if needle and needle in text]


@pytest.fixture
def world(db) -> World:
    now = timezone.now()
    owner = AccountFactory(org_name=OWNER_ORG, billing_email="ap@owner-matrix.test")
    other = AccountFactory(org_name=OTHER_ORG, billing_email="ap@other-matrix.test")
    open_invoice = make_invoice(account=owner, state=State.OPEN)
    pending = make_invoice(account=owner, state=State.PENDING)
    paid = make_invoice(account=owner, state=State.PENDING)
    services.invoice_mark_paid(invoice=paid, actor=ACTOR, method="bank_transfer", reference="W-1")
    paid.refresh_from_db()
    # The other account has data of its own, so its lists are not trivially empty.
    make_invoice(account=other, state=State.PENDING)
    for account, prefix in ((owner, "usage-owner-"), (other, "usage-other-")):
        usage_services.usage_ingest(
            records=[
                {
                    "id": f"{prefix}{n}",
                    "account_id": account.pk,
                    "resource_id": f"{prefix}res",
                    "service": "EC2",
                    "region": "eu-west-1",
                    "start_time": (now - dt.timedelta(hours=3)).isoformat(),
                    "end_time": (now - dt.timedelta(hours=2)).isoformat(),
                    "cost": "1.50",
                }
                for n in range(2)
            ]
        )
    revoked, revoked_secret = make_api_key(scope="write", account=owner, name="revoked")
    api_key_revoke(api_key=revoked)
    _, expired_secret = make_api_key(
        scope="write", account=owner, name="expired", expires_at=now - dt.timedelta(seconds=1)
    )
    keys = {
        "none": None,
        "bad": "bk_00000000_" + "x" * 43,
        "revoked": revoked_secret,
        "expired": expired_secret,
        "read": make_api_key(scope="read", account=owner, name="read")[1],
        "write": make_api_key(scope="write", account=owner, name="write")[1],
        "other": make_api_key(scope="write", account=other, name="other")[1],
        "provider": make_api_key(scope="write", name="provider")[1],
    }
    return World(
        owner=owner,
        other=other,
        open=open_invoice,
        pending=pending,
        paid=paid,
        line=open_invoice.line_items.first(),
        keys=keys,
    )


# name -> (api, method, path, body, what the owner's write key gets, kind)
# kind: "object" (the owner's object: another account gets 404), "list" (a list or a
# report: another account gets its own data only), "provider" (account management
# itself: only a key for all accounts may use it), "create" (creates for the owner).
ENDPOINTS: dict[str, tuple] = {
    # --- the 3scale Billing API
    "3scale invoice list": ("3scale", "get", "/api/invoices.json", None, 200, "list"),
    "3scale invoice create": (
        "3scale",
        "post",
        "/api/invoices.json",
        {"account_id": "{owner}", "period": "{month}"},
        201,
        "create",
    ),
    "3scale invoice read": ("3scale", "get", "/api/invoices/{open}.json", None, 200, "object"),
    "3scale invoice update": (
        "3scale",
        "put",
        "/api/invoices/{open}.json",
        {"period": "{month}"},
        200,
        "object",
    ),
    "3scale invoice state": (
        "3scale",
        "put",
        "/api/invoices/{open}/state.json",
        {"state": "finalized"},
        200,
        "object",
    ),
    "3scale invoice charge": (
        "3scale",
        "post",
        "/api/invoices/{pending}/charge.json",
        None,
        201,
        "object",
    ),
    "3scale line items": (
        "3scale",
        "get",
        "/api/invoices/{open}/line_items.json",
        None,
        200,
        "object",
    ),
    "3scale line item create": (
        "3scale",
        "post",
        "/api/invoices/{open}/line_items.json",
        {"name": "Support", "cost": "5.00"},
        201,
        "object",
    ),
    "3scale line item delete": (
        "3scale",
        "delete",
        "/api/invoices/{open}/line_items/{line}.json",
        None,
        200,
        "object",
    ),
    "3scale payment transactions": (
        "3scale",
        "get",
        "/api/invoices/{paid}/payment_transactions.json",
        None,
        200,
        "object",
    ),
    "3scale account invoices": (
        "3scale",
        "get",
        "/api/accounts/{owner}/invoices.json",
        None,
        200,
        "object",
    ),
    "3scale account invoice": (
        "3scale",
        "get",
        "/api/accounts/{owner}/invoices/{pending}.json",
        None,
        200,
        "object",
    ),
    "3scale invoice pdf": ("3scale", "get", "/api/invoices/{paid}.pdf", None, 302, "object"),
    # --- 3scale Account Management
    "3scale account list": ("3scale", "get", "/admin/api/accounts.json", None, 403, "provider"),
    "3scale signup": (
        "3scale",
        "post",
        "/admin/api/signup.json",
        {"org_name": "Newco", "email": "ap@newco.test"},
        403,
        "provider",
    ),
    "3scale account read": (
        "3scale",
        "get",
        "/admin/api/accounts/{owner}.json",
        None,
        200,
        "object",
    ),
    "3scale account update": (
        "3scale",
        "put",
        "/admin/api/accounts/{owner}.json",
        {"billing_address": {"city": "Shelbyville"}},
        403,
        "provider",
    ),
    "3scale account delete": (
        "3scale",
        "delete",
        "/admin/api/accounts/{owner}.json",
        None,
        403,
        "provider",
    ),
    # --- the JSON API
    "v1 invoice list": ("v1", "get", "/v1/invoices", None, 200, "list"),
    "v1 invoice list by customer": (
        "v1",
        "get",
        "/v1/invoices?customer_id={owner}",
        None,
        200,
        "list",
    ),
    "v1 invoice create": (
        "v1",
        "post",
        "/v1/invoices",
        {"customer_id": "{owner}", "draft": True},
        201,
        "create",
    ),
    "v1 invoice read": ("v1", "get", "/v1/invoices/{open}", None, 200, "object"),
    "v1 invoice patch": (
        "v1",
        "patch",
        "/v1/invoices/{open}",
        {"description": "x", "amount": 5},
        200,
        "object",
    ),
    "v1 invoice put": (
        "v1",
        "put",
        "/v1/invoices/{open}",
        {"date": "{today}", "amount": 7},
        200,
        "object",
    ),
    "v1 invoice delete": ("v1", "delete", "/v1/invoices/{open}", None, 204, "object"),
    "v1 invoice issue": ("v1", "post", "/v1/invoices/{open}/issue", None, 200, "object"),
    "v1 invoice cancel": ("v1", "post", "/v1/invoices/{open}/cancel", None, 200, "object"),
    "v1 invoice charge": ("v1", "post", "/v1/invoices/{pending}/charge", None, 200, "object"),
    "v1 invoice mark paid": (
        "v1",
        "post",
        "/v1/invoices/{pending}/mark_paid",
        {"method": "bank_transfer", "reference": "W-2"},
        200,
        "object",
    ),
    "v1 usage ingest": (
        "v1",
        "post",
        "/v1/usage",
        [
            {
                "id": "matrix-new-1",
                "resource_id": "r-1",
                "service": "EC2",
                "region": "eu-west-1",
                "start_time": "{start}",
                "end_time": "{end}",
                "cost": "0.10",
            }
        ],
        201,
        "create",
    ),
    "v1 usage report": (
        "v1",
        "get",
        "/v1/usage/report?start_date={month_start}&end_date={today}",
        None,
        200,
        "list",
    ),
    "v1 usage report by account": (
        "v1",
        "get",
        "/v1/usage/report?start_date={month_start}&end_date={today}&account_id={owner}",
        None,
        200,
        "object",
    ),
    "v1 usage report post": (
        "v1",
        "post",
        "/v1/usage/report",
        {"start_date": "{month_start}", "end_date": "{today}"},
        200,
        "list",
    ),
}
CALLERS = ["none", "bad", "revoked", "expired", "read", "write", "other", "provider"]
# A report is a read, even when asked for with POST.
READS_BY_POST = {"v1 usage report post"}


def _fill(value, world: World):
    now = timezone.now()
    names = {
        "owner": world.owner.pk,
        "open": world.open.pk,
        "pending": world.pending.pk,
        "paid": world.paid.pk,
        "line": world.line.pk,
        "start": (now - dt.timedelta(minutes=30)).isoformat(),
        "end": (now - dt.timedelta(minutes=20)).isoformat(),
        "month": f"{now:%Y-%m}",
        "month_start": now.date().replace(day=1).isoformat(),
        "today": now.date().isoformat(),
    }
    if isinstance(value, str):
        if value.startswith("{") and value.endswith("}") and value[1:-1] in names:
            return names[value[1:-1]]  # a whole value: keep its type (ids are numbers)
        return value.format(**names)
    if isinstance(value, dict):
        return {k: _fill(v, world) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, world) for v in value]
    return value


def call(world: World, name: str, caller: str):
    api, method, path, body, _status, _kind = ENDPOINTS[name]
    client = APIClient()
    secret = world.keys[caller]
    url = _fill(path, world)
    if secret is not None:
        if api == "v1":
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        else:
            # 3scale clients send the key as a parameter.
            url += f"{'&' if '?' in url else '?'}access_token={secret}"
    if body is None:
        return getattr(client, method)(url)
    return getattr(client, method)(
        url, data=json.dumps(_fill(body, world)), content_type="application/json"
    )


def expected_status(name: str, caller: str) -> int:
    api, method, _path, _body, status, kind = ENDPOINTS[name]
    writes = method != "get" and name not in READS_BY_POST
    if caller in ("none", "bad", "revoked", "expired"):
        return 403 if api == "3scale" else 401
    if caller == "read" and writes:
        return 403
    if kind == "provider":
        # Changing accounts themselves needs a key for all accounts.
        return {"provider": 201 if method == "post" else 200}.get(caller, status)
    if caller == "other" and kind == "object":
        return 404
    if caller == "other" and kind == "create":
        # The owner's account is invisible to this key: a field error, nothing written.
        return 422 if api == "3scale" else 400
    if caller == "read":
        return 302 if status == 302 else 200
    return status


def _body(response) -> dict:
    """A 3scale error body as a dict, whichever format it came in."""
    if response["Content-Type"].startswith("application/xml"):
        if not response.content:
            return {"status": "Not found"} if response.status_code == 404 else {}
        root = ET.fromstring(response.content)
        return {root.tag: root.text}
    return response.json()


def _snapshot() -> tuple:
    return (
        Invoice.objects.count(),
        LineItem.objects.count(),
        PaymentTransaction.objects.count(),
        list(Invoice.objects.order_by("pk").values_list("state", flat=True)),
        list(Account.objects.order_by("pk").values_list("org_name", "state", "city")),
    )


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("name", ENDPOINTS)
def test_authorization_matrix(world, name, caller):
    api, method, *_ = ENDPOINTS[name]
    before = _snapshot()
    response = call(world, name, caller)
    expected = expected_status(name, caller)
    if name == "v1 usage ingest" and caller == "other":
        expected = 201  # an account-limited key's records go to its own account
    if name == "v1 usage ingest" and caller == "provider":
        expected = 400  # a key for all accounts must name the account of each record
    assert response.status_code == expected, (name, caller, response.content[:400])

    refused = response.status_code >= 400
    if refused:
        # A refusal writes nothing.
        assert _snapshot() == before, (name, caller)
    if caller in ("none", "bad", "revoked", "expired"):
        if api == "3scale":
            assert _body(response) == ACCESS_DENIED
        else:
            assert response.json()["error"]["code"] == "unauthenticated"
            assert response["WWW-Authenticate"].startswith("Bearer")
    elif caller == "read" and response.status_code == 403:
        if api == "3scale":
            assert _body(response) == NO_PERMISSION
        else:
            assert response.json()["error"]["code"] == "forbidden"
    elif response.status_code == 404:
        if api == "3scale":
            assert _body(response) == {"status": "Not found"}
        else:
            assert response.json()["error"]["code"] == "not_found"
    if caller in ("none", "bad", "revoked", "expired", "other"):
        assert world.leaks(response.content) == [], (name, caller, response.content[:400])
    if caller == "other" and name == "v1 usage ingest":
        assert not world.owner.usage_records.filter(client_id="matrix-new-1").exists()


def test_the_other_accounts_filters_find_nothing_of_the_owner(world):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {world.keys['other']}")
    response = client.get(f"/v1/invoices?customer_id={world.owner.pk}")
    assert response.status_code == 200
    assert response.json() == []
    response = client.get(f"/v1/invoices?account_id={world.owner.pk}")
    assert response.status_code in (200, 400)
    assert world.leaks(response.content) == []
    if response.status_code == 200:
        assert {item["customer_id"] for item in response.json()} <= {world.other.pk}
    three = APIClient()
    for url in (
        f"/api/invoices.json?access_token={world.keys['other']}&account_id={world.owner.pk}",
        f"/api/invoices.json?access_token={world.keys['other']}&buyer_query=Owner",
        f"/admin/api/accounts/{world.owner.pk}.json?access_token={world.keys['other']}",
    ):
        response = three.get(url)
        assert world.leaks(response.content) == [], url
    # Every invoice another account's key can list is its own.
    listed = three.get(f"/api/invoices.json?access_token={world.keys['other']}").json()
    ids = {entry["invoice"]["id"] for entry in listed["invoices"]}
    assert ids == set(world.other.invoices.values_list("pk", flat=True))


def test_pdf_links_are_signed_and_bound_to_one_invoice(world):
    client = APIClient()
    response = client.get(f"/api/invoices/{world.paid.pk}.pdf?access_token={world.keys['read']}")
    assert response.status_code == 302
    link = urlparse(response["Location"]).path
    assert APIClient().get(link).status_code == 200  # the link itself needs no key
    token = link.rstrip("/").rsplit("/", 1)[1]
    value, _, rest = token.partition(":")
    forged = link.replace(token, f"{world.pending.pk}:{rest}")
    assert APIClient().get(forged).status_code == 403
    assert APIClient().get(link[:-2] + "xx").status_code == 403
    # Another account's key never gets a link to the owner's invoice.
    other = client.get(f"/api/invoices/{world.paid.pk}.pdf?access_token={world.keys['other']}")
    assert other.status_code == 404
    assert "Location" not in other


# --- staff: the admin, its actions and the dashboard ---------------------------------

STAFF_CALLERS = ["anonymous", "not staff", "auditor", "finance"]


@pytest.fixture
def staff_client(db, client, django_user_model):
    def login(who: str):
        if who == "anonymous":
            return client
        user = django_user_model.objects.create_user(
            who.replace(" ", "_"), f"{who.replace(' ', '_')}@example.test", "pw-123456789"
        )
        if who in ("auditor", "finance"):
            user.is_staff = True
            user.save()
            user.groups.add(Group.objects.get(name=who.capitalize()))
        client.force_login(user)
        return client

    return login


STAFF_PAGES = {
    "admin index": "/admin/",
    "invoice list": "/admin/invoices/invoice/",
    "invoice page": "/admin/invoices/invoice/{open}/change/",
    "invoice pdf": "/admin/invoices/invoice/{paid}/pdf/",
    "account list": "/admin/accounts/account/",
    "dashboard": "/staff/dashboard/",
}


@pytest.mark.parametrize("who", STAFF_CALLERS)
@pytest.mark.parametrize("page", STAFF_PAGES)
def test_staff_pages(world, staff_client, page, who):
    client = staff_client(who)
    response = client.get(_fill(STAFF_PAGES[page], world))
    if who in ("anonymous", "not staff"):
        assert response.status_code == 302
        assert urlparse(response["Location"]).path == "/admin/login/"
    else:
        assert response.status_code == 200


@pytest.mark.parametrize("who", STAFF_CALLERS)
def test_only_finance_can_act(world, staff_client, who):
    client = staff_client(who)
    # An admin action, as the changelist posts it.
    client.post(
        "/admin/invoices/invoice/",
        {"action": "issue_invoices", "_selected_action": [world.open.pk], "index": 0},
    )
    world.open.refresh_from_db()
    assert world.open.state == (State.PENDING if who == "finance" else State.OPEN)
    # A change through the form: the auditor may look, not change.
    response = client.post(f"/admin/accounts/account/{world.other.pk}/change/", {"org_name": "X"})
    if who == "auditor":
        assert response.status_code == 403
    elif who != "finance":
        assert response.status_code == 302
        assert urlparse(response["Location"]).path == "/admin/login/"
    world.other.refresh_from_db()
    assert world.other.org_name == OTHER_ORG
