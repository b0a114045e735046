"""Invoice reads below REST framework (invoices.api.fast_reads): the same answer as
REST framework's views, byte for byte, in one statement; anything unusual handed on."""

from __future__ import annotations

import base64
import datetime as dt
import time
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.views import APIView

from accounts.services import api_key_revoke
from billing.lib import counting
from invoices import representations, services
from invoices.api import fast_reads
from invoices.models import Invoice, InvoiceRepresentation
from tests.factories import AccountFactory, make_api_key, make_invoice

State = Invoice.State


@pytest.fixture
def world(db):
    """Three accounts' invoices over two months in every state, each one's rows stored;
    a provider-wide key, a read key, a key of the first account and a revoked one."""
    accounts = [AccountFactory() for _ in range(3)]
    now = timezone.now()
    earlier = (now.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    invoices = []
    for index, state in enumerate(
        [State.OPEN, State.PENDING, State.PAID, State.UNPAID, State.CANCELLED, State.FAILED] * 3
    ):
        invoices.append(
            make_invoice(
                account=accounts[index % 3],
                state=state,
                period=earlier.date() if index % 2 else None,
                lines=[("1", "10.00"), ("2", "3.25")],
            )
        )
    representations.render_and_store(invoice.pk for invoice in invoices)
    _, revoked = make_api_key(name="revoked")
    api_key_revoke(api_key=make_api_key(name="to revoke")[0])
    revoked_key, revoked = make_api_key(name="revoked later")
    api_key_revoke(api_key=revoked_key)
    return {
        "accounts": accounts,
        "invoices": invoices,
        "month": f"{earlier:%Y-%m}",
        "admin": make_api_key(scope="write")[1],
        "read": make_api_key(scope="read")[1],
        "scoped": make_api_key(scope="read", account=accounts[0])[1],
        "revoked": revoked,
    }


def _requests(world) -> list[tuple[str, dict[str, str]]]:
    """(path with query, headers): the common cases and the unusual ones."""
    invoice = world["invoices"][4]
    other = world["invoices"][5]  # another account's (not the scoped key's)
    account = invoice.account_id
    admin, read, scoped = world["admin"], world["read"], world["scoped"]
    month = world["month"]
    basic = base64.b64encode(f"{admin}:".encode()).decode()
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {admin}"}
    result: list[tuple[str, dict[str, str]]] = []

    def three(path: str, key: str | None = admin, headers=None, **params: Any):
        query = {"access_token": key, **params} if key else params
        result.append((f"{path}?{urlencode(query, doseq=True)}" if query else path, headers or {}))

    for suffix in (".json", ".xml", ""):
        three(f"/api/invoices/{invoice.pk}{suffix}")
        three(f"/api/invoices/{invoice.pk}{suffix}", key=read)
        three(f"/api/invoices/{invoice.pk}{suffix}", key=scoped)
        three(f"/api/invoices/{other.pk}{suffix}", key=scoped)  # 404
        three(f"/api/invoices/999999{suffix}")
        three(f"/api/accounts/{account}/invoices/{invoice.pk}{suffix}")
        three(f"/api/accounts/{other.account_id}/invoices/{invoice.pk}{suffix}")  # 404
        three(f"/api/invoices{suffix}")
        three(f"/api/invoices{suffix}", per_page=4, page=2)
        three(f"/api/invoices{suffix}", per_page=4, page=5)  # the last, short page
        three(f"/api/invoices{suffix}", per_page=4, page=9)  # past the end
        three(f"/api/invoices{suffix}", state="paid", month=month)
        three(f"/api/invoices{suffix}", state="paid,pending", per_page=2)
        three(f"/api/invoices{suffix}", **dict[str, Any]({"state[]": ["paid", "unpaid"]}))
        three(f"/api/invoices{suffix}", key=scoped, per_page=2, page=2)
        three(f"/api/accounts/{account}/invoices{suffix}", per_page=2)
        three(f"/api/accounts/{account}/invoices{suffix}", key=scoped)
        three(f"/api/accounts/{account}/invoices{suffix}", per_page=2, page=50)  # empty
        three(f"/api/accounts/999999/invoices{suffix}")  # no such account
    # What the fast views hand on, and what they read as REST framework does.
    three(f"/api/invoices/{invoice.pk}.json", key=None)
    three(f"/api/invoices/{invoice.pk}.json", key="bk_nonsense")
    three(f"/api/invoices/{invoice.pk}.json", key=world["revoked"])
    three(f"/api/invoices/{invoice.pk}.json", key=None, provider_key=admin)
    three(
        f"/api/invoices/{invoice.pk}.xml",
        key=None,
        headers={"HTTP_AUTHORIZATION": f"Basic {basic}"},
    )
    three(f"/api/invoices/{invoice.pk}.json", key=None, headers=bearer)
    three(f"/api/invoices/{invoice.pk}", headers={"HTTP_ACCEPT": "application/json"})
    three(f"/api/invoices/{invoice.pk}", headers={"HTTP_ACCEPT": "*/*"})
    three(f"/api/invoices/{invoice.pk}", headers={"HTTP_ACCEPT": "application/xml"})
    three(f"/api/invoices/{invoice.pk}", headers={"HTTP_ACCEPT": "text/csv"})
    three(f"/api/invoices/{invoice.pk}.json", format="xml")
    three(f"/api/invoices/{invoice.pk}.csv")
    three(f"/api/invoices/{invoice.pk}.json", unknown="1")
    three(f"/api/invoices/{'٣'}.json")  # an Arabic-Indic digit
    three("/api/invoices/00.json")
    three("/api/invoices.json", state="nonsense")
    three("/api/invoices.json", state="paid\x00")
    three("/api/invoices.json", month="2026-13")
    three("/api/invoices.json", month="２０２６-01")
    result.append((f"/api/invoices.json?access_token={admin}&month=%ED%A0%80", {}))  # a surrogate
    three("/api/invoices.json", page="٢", per_page="abc")
    three("/api/invoices.json", page="-3", per_page="100000")
    three("/api/invoices.json", year="2026")
    result.append(
        (f"/api/invoices.json?{quote('access_token')}={admin}&per%5Fpage=2", {})
    )  # percent-encoded names

    def v1(path: str, headers=bearer):
        result.append((path, headers))

    v1(f"/v1/invoices/{invoice.pk}")
    v1(f"/v1/invoices/{other.pk}", {"HTTP_AUTHORIZATION": f"Bearer {scoped}"})  # 404
    v1(f"/v1/invoices/{invoice.pk}", {"HTTP_AUTHORIZATION": f"Bearer {scoped}"})
    v1("/v1/invoices/999999")
    v1(f"/v1/invoices/{invoice.pk}", {})  # 401
    v1(f"/v1/invoices/{invoice.pk}", {"HTTP_AUTHORIZATION": f"Basic {basic}"})
    v1(f"/v1/invoices/{invoice.pk}", {"HTTP_AUTHORIZATION": f"Bearer {world['revoked']}"})
    v1(f"/v1/invoices/{invoice.pk}", {**bearer, "HTTP_ACCEPT": "application/xml"})
    v1(f"/v1/invoices/{invoice.pk}?state=paid")
    v1("/v1/invoices/abc")
    v1("/v1/invoices")
    v1("/v1/invoices?per_page=4&page=2")
    v1("/v1/invoices?per_page=4&page=5")
    v1("/v1/invoices?per_page=4&page=9")
    v1(f"/v1/invoices?state=paid,unpaid&month={month}")
    v1("/v1/invoices?state=paid&state=open&per_page=2")
    v1("/v1/invoices?per_page=3", {"HTTP_AUTHORIZATION": f"Bearer {scoped}"})
    v1("/v1/invoices?state=nonsense")
    v1("/v1/invoices?state=")
    v1("/v1/invoices?month=")
    v1("/v1/invoices?month=2026-1")
    v1("/v1/invoices?page=0")
    v1("/v1/invoices?per_page=101")
    v1("/v1/invoices?page=%D9%A2")
    v1("/v1/invoices?ordering=amount")
    v1("/v1/invoices?status=paid")
    v1(f"/v1/invoices?customer_id={account}")
    v1("/v1/invoices", {**bearer, "HTTP_ACCEPT": "text/html"})
    return result


def _answer(path: str, headers: dict[str, Any]):
    response = Client().get(path, **headers)
    return response.status_code, dict(response.headers), response.content


@pytest.fixture
def rest_framework_calls(monkeypatch) -> list[str]:
    """The paths REST framework's views were asked to answer."""
    calls: list[str] = []
    dispatch = APIView.dispatch

    def counted(self, request, *args, **kwargs):
        calls.append(request.get_full_path())
        return dispatch(self, request, *args, **kwargs)

    monkeypatch.setattr(APIView, "dispatch", counted)
    return calls


def test_every_read_is_answered_as_rest_framework_answers_it(world, settings):
    # given every request, answered by REST framework alone
    requests = _requests(world)
    settings.API_FAST_READS = False
    expected = [_answer(path, headers) for path, headers in requests]

    # when the same requests are sent with the fast views in front
    settings.API_FAST_READS = True
    answered = [_answer(path, headers) for path, headers in requests]

    # then each answer is the same: status, headers, bytes
    for (path, _), before, after in zip(requests, expected, answered, strict=True):
        assert after == before, path
    assert {status for status, _, _ in answered} >= {200, 400, 401, 403, 404, 406}


def test_the_common_reads_never_reach_rest_framework(world, rest_framework_calls):
    invoice = world["invoices"][2]
    admin = world["admin"]
    client = Client()
    paths = [
        f"/api/invoices/{invoice.pk}.json?access_token={admin}",
        f"/api/invoices/{invoice.pk}.xml?access_token={admin}",
        f"/api/invoices/{invoice.pk}?access_token={admin}",
        f"/api/accounts/{invoice.account_id}/invoices/{invoice.pk}.json?access_token={admin}",
        f"/api/invoices.json?access_token={admin}&state=paid&month={world['month']}",
        f"/api/invoices.xml?access_token={admin}&page=2&per_page=5",
        f"/api/accounts/{invoice.account_id}/invoices.xml?access_token={admin}",
    ]
    for path in paths:
        assert client.get(path).status_code == 200, path
    for path in (f"/v1/invoices/{invoice.pk}", "/v1/invoices?state=paid,open&page=2&per_page=3"):
        assert client.get(path, HTTP_AUTHORIZATION=f"Bearer {admin}").status_code == 200, path
    assert rest_framework_calls == []


def test_a_row_not_stored_yet_is_rendered_by_rest_framework_then_served_stored(
    world, rest_framework_calls
):
    invoice = world["invoices"][3]
    InvoiceRepresentation.objects.filter(invoice=invoice).delete()
    path = f"/api/invoices/{invoice.pk}.json?access_token={world['admin']}"
    first = Client().get(path)
    assert rest_framework_calls == [path]  # handed on: the view rendered and stored it
    assert InvoiceRepresentation.objects.filter(invoice=invoice).count() == 3
    second = Client().get(path)
    assert rest_framework_calls == [path]  # now answered stored
    assert second.content == first.content
    assert second["ETag"] == first["ETag"]


def test_a_current_client_gets_304(world):
    invoice = world["invoices"][2]
    path = f"/api/invoices/{invoice.pk}.xml?access_token={world['admin']}"
    first = Client().get(path)
    assert Client().get(path, HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304
    since = Client().get(path, HTTP_IF_MODIFIED_SINCE=first["Last-Modified"])
    assert since.status_code == 304
    assert since.content == b""


def test_a_revoked_key_is_refused_at_once(world, rest_framework_calls):
    key, secret = make_api_key(name="soon revoked")
    path = f"/api/invoices/{world['invoices'][0].pk}.json?access_token={secret}"
    assert Client().get(path).status_code == 200
    api_key_revoke(api_key=key)
    assert Client().get(path).status_code == 403


def _queries(path: str, **headers: Any) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        assert Client().get(path, **headers).status_code == 200
    return [query["sql"] for query in queries]


def test_a_read_is_one_statement_with_its_total(world):
    admin = world["admin"]
    invoice = world["invoices"][2]
    Client().get(f"/api/invoices.json?access_token={admin}")  # the key's last use, once
    for path in (f"/api/invoices/{invoice.pk}.xml", f"/api/invoices/{invoice.pk}.json"):
        assert len(_queries(f"{path}?access_token={admin}")) == 1
    assert len(_queries(f"/v1/invoices/{invoice.pk}", HTTP_AUTHORIZATION=f"Bearer {admin}")) == 1
    # A full page counts its list in the same statement; a short last page tells its own.
    for path, headers in [
        (f"/api/invoices.json?access_token={admin}&per_page=5", {}),
        (f"/api/invoices.json?access_token={admin}&per_page=5&page=4", {}),
        ("/v1/invoices?per_page=5", {"HTTP_AUTHORIZATION": f"Bearer {admin}"}),
        (f"/api/accounts/{invoice.account_id}/invoices.xml?access_token={admin}&per_page=2", {}),
    ]:
        assert len(_queries(path, **headers)) == 1, path
    # A page past the end counts on its own.
    assert len(_queries(f"/api/invoices.json?access_token={admin}&per_page=5&page=9")) == 2


def test_a_large_total_is_counted_once_then_shared(world, monkeypatch):
    monkeypatch.setattr(counting, "EXACT_COUNT_LIMIT", 5)
    admin = world["admin"]
    Client().get(f"/api/invoices.json?access_token={admin}")  # the key's last use, once
    path = f"/api/invoices.xml?access_token={admin}&per_page=2"
    assert len(_queries(path)) == 2  # the page with its capped count, then the whole count
    assert len(_queries(path)) == 1  # the page; the total is shared for a moment
    assert b'total_entries="18"' in Client().get(path).content


# --- deep pages from remembered positions -------------------------------------------------


@pytest.fixture
def shallow_anchors(monkeypatch):
    """Positions remembered from the second page of 3 on (1,000 rows deep in production)."""
    monkeypatch.setattr(fast_reads, "ANCHOR_FROM_OFFSET", 3)


def _ids(path: str, **headers: Any) -> list[int]:
    data = Client().get(path, **headers).json()
    items = data if isinstance(data, list) else [item["invoice"] for item in data["invoices"]]
    return [item["id"] for item in items]


def test_pages_read_from_remembered_positions_are_the_offset_pages(
    world, settings, shallow_anchors
):
    admin = world["admin"]
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {admin}"}
    walks = [
        ([f"/api/invoices.json?access_token={admin}&per_page=3&page={n}" for n in range(1, 8)], {}),
        ([f"/api/invoices.xml?access_token={admin}&per_page=2&page={n}" for n in range(9)], {}),
        (
            [f"/v1/invoices?state=paid,open,pending&per_page=2&page={n}" for n in range(1, 6)],
            bearer,
        ),
    ]
    for paths, headers in walks:
        settings.API_FAST_READS = False
        expected = [_answer(path, headers) for path in paths]
        settings.API_FAST_READS = True
        walked = [_answer(path, headers) for path in paths]  # each page from the one before
        again = [_answer(path, headers) for path in paths]  # each page from its own position
        backwards = [_answer(path, headers) for path in reversed(paths)]
        assert walked == expected
        assert again == expected
        assert backwards == expected[::-1]


def test_a_deep_page_seeks_to_the_position_a_read_remembered(world, shallow_anchors):
    admin = world["admin"]
    page = f"/api/invoices.json?access_token={admin}&per_page=3&page="
    Client().get(page + "1")  # the key's last use, once
    assert "<= (" not in " ".join(_queries(page + "2"))  # found by OFFSET, then remembered
    assert "<= (" in " ".join(_queries(page + "3"))  # from page 2's position
    assert "<= (" in " ".join(_queries(page + "2"))


def test_a_remembered_position_lags_by_at_most_anchor_seconds(world, shallow_anchors, monkeypatch):
    admin = world["admin"]
    page_2 = f"/api/invoices.json?access_token={admin}&per_page=3&page=2"
    before = _ids(page_2)
    # a new invoice goes to the head of the list, so every page moves down by one
    newest = make_invoice(account=world["accounts"][1])
    listed = _ids(f"/api/invoices.json?access_token={admin}&per_page=100")
    assert listed[0] == newest.pk
    assert _ids(page_2) == before  # placed as it was a moment ago, for ANCHOR_SECONDS
    later = time.time() + fast_reads.ANCHOR_SECONDS + 1
    monkeypatch.setattr(fast_reads.time, "time", lambda: later)
    assert _ids(page_2) == listed[3:6]  # exact again


def test_a_page_whose_remembered_invoice_was_deleted_is_read_by_offset(
    world, settings, shallow_anchors
):
    # given four new drafts at the head of the list: page 2 (of 3) starts with the first
    drafts = [make_invoice(account=world["accounts"][2]) for _ in range(4)]
    admin = world["admin"]
    page_2 = f"/api/invoices.json?access_token={admin}&per_page=3&page=2"
    assert _ids(page_2)[0] == drafts[0].pk  # and that position is remembered
    # when that draft is deleted
    services.invoice_delete(invoice=drafts[0], actor="test")
    # then the page is read by OFFSET again, exactly
    settings.API_FAST_READS = False
    expected = _ids(page_2)
    settings.API_FAST_READS = True
    assert _ids(page_2) == expected
    assert drafts[0].pk not in expected


def test_a_cache_that_cannot_answer_leaves_lists_as_rest_framework_answers_them(
    world, settings, monkeypatch, shallow_anchors
):
    from django.core.cache import cache

    def down(*args, **kwargs):
        raise ConnectionError("cache down")

    admin = world["admin"]
    paths = [
        (f"/api/invoices.json?access_token={admin}&per_page=4", {}),
        (f"/api/invoices.xml?access_token={admin}&per_page=3&page=3", {}),
        ("/v1/invoices?per_page=3&page=2", {"HTTP_AUTHORIZATION": f"Bearer {admin}"}),
    ]
    settings.API_FAST_READS = False
    expected = [_answer(path, headers) for path, headers in paths]
    settings.API_FAST_READS = True
    for name in ("get", "set", "delete"):
        monkeypatch.setattr(cache, name, down)
    assert [_answer(path, headers) for path, headers in paths] == expected


def test_last_modified_is_the_same_in_any_server_time_zone(world, settings):
    invoice = world["invoices"][2]
    path = f"/api/invoices/{invoice.pk}.xml?access_token={world['admin']}"
    settings.TIME_ZONE = "America/New_York"
    settings.API_FAST_READS = False
    expected = _answer(path, {})
    settings.API_FAST_READS = True
    assert _answer(path, {}) == expected
    assert (
        Client().get(path, HTTP_IF_MODIFIED_SINCE=expected[1]["Last-Modified"]).status_code == 304
    )
