"""The 3scale-compatible invoice API (/api/invoices): shapes, lists, writes, errors, auth."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.services import account_soft_delete, account_update, api_key_revoke
from invoices import services
from invoices.models import Invoice, InvoiceCounter, PaymentTransaction
from tests.factories import AccountFactory, make_api_key, make_invoice
from tests.support.threescale import (
    XML_DECLARATION,
    parse_xml,
    send_form,
    send_json,
    tags,
    url,
)

NOW = dt.datetime(2026, 1, 15, 10, 20, 30, tzinfo=dt.UTC)
S = Invoice.State
INVOICE_KEYS = [
    "id", "friendly_id", "created_at", "updated_at", "state", "paid_at", "due_on", "issued_on",
    "currency", "cost", "vat_rate", "vat_amount", "cost_without_vat", "period",
    "creation_type", "links",
]  # fmt: skip
INVOICE_XML_TAGS = [
    "id", "friendly_id", "creation_type", "state", "paid_at", "due_on", "issued_on",
    "currency", "cost", "vat_rate", "vat_amount", "cost_without_vat", "period", "provider",
    "buyer", "line-items", "payment_transactions_count",
]  # fmt: skip
PARTY_TAGS = ["id", "org_name", "address", "city", "state", "country", "phone", "zip"]


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def key(admin_key) -> str:
    return admin_key[1]


def _expected_keys(data: dict) -> list[str]:
    return [k for k in INVOICE_KEYS if k in data]


# --- representations ------------------------------------------------------------------


@pytest.mark.django_db
class TestInvoiceJson:
    def test_open_invoice_document_is_exactly_the_3scale_shape(self, client, owner, key, frozen):
        invoice = make_invoice(account=owner.account, lines=[])

        response = client.get(url(f"/api/invoices/{invoice.pk}.json", key))

        assert response.status_code == 200
        assert response["Content-Type"] == "application/json; charset=utf-8"
        base = "http://testserver"
        expected = (
            '{"invoice":{"id":ID,"created_at":"2026-01-15T10:20:30Z",'
            '"updated_at":"2026-01-15T10:20:30Z","state":"open","currency":"USD","cost":0.0,'
            '"vat_rate":null,"vat_amount":0.0,"cost_without_vat":0.0,'
            '"period":{"begin":"2026-01-01","end":"2026-01-31"},"creation_type":"manual",'
            '"links":[{"rel":"account","href":"BASE/admin/api/accounts/ACCOUNT"},'
            '{"rel":"self","href":"BASE/api/invoices/ID"},'
            '{"rel":"payment_transactions","href":"BASE/api/invoices/ID/payment_transactions"},'
            '{"rel":"line_items","href":"BASE/api/invoices/ID/line_items"}]}}'
        )
        expected = expected.replace("ID", str(invoice.pk)).replace("ACCOUNT", str(owner.account.pk))
        assert response.content.decode() == expected.replace("BASE", base)

    def test_paid_invoice_with_vat_carries_dates_between_state_and_currency(
        self, client, key, frozen
    ):
        account = AccountFactory(currency="EUR", vat_rate=Decimal("10"))
        invoice = make_invoice(account=account, lines=[("1", "100")], state=S.PAID)

        data = client.get(url(f"/api/invoices/{invoice.pk}.json", key)).json()["invoice"]

        assert list(data) == INVOICE_KEYS
        assert data["friendly_id"] == "2026-01-00000001"
        assert data["paid_at"] == "2026-01-15T10:20:30Z"
        assert data["issued_on"] == "2026-01-15"
        assert data["due_on"] == "2026-02-14"
        assert (data["cost"], data["vat_rate"], data["vat_amount"], data["cost_without_vat"]) == (
            110.0,
            10.0,
            10.0,
            100.0,
        )

    def test_money_is_written_from_decimal_digits(self, client, key):
        account = AccountFactory(currency="USD", vat_rate=Decimal("21"))
        invoice = make_invoice(account=account, lines=[("3", "9.99"), ("1", "0.005")])

        body = client.get(url(f"/api/invoices/{invoice.pk}.json", key)).content.decode()

        assert '"cost":36.28,' in body
        assert '"vat_rate":21.0,' in body
        assert '"vat_amount":6.3,' in body
        assert '"cost_without_vat":29.98,' in body
        parsed = json.loads(body, parse_float=Decimal)
        assert parsed["invoice"]["cost"] == Decimal("36.28")

    def test_large_amounts_do_not_drift(self, client, key):
        invoice = make_invoice(lines=[("1", "123456789012.34")])
        body = client.get(url(f"/api/invoices/{invoice.pk}.json", key)).content.decode()
        assert '"cost":123456789012.34,' in body


@pytest.mark.django_db
class TestInvoiceXml:
    def test_open_invoice_element_order_and_nil_forms(self, client, owner, key, frozen):
        invoice = make_invoice(account=owner.account, lines=[("2", "10")])

        response = client.get(url(f"/api/invoices/{invoice.pk}.xml", key))

        assert response.status_code == 200
        assert response["Content-Type"] == "application/xml; charset=utf-8"
        body = response.content
        assert body.startswith(XML_DECLARATION + b'<invoice version="1.0"><id>')
        assert b"\n" not in body.replace(b"1 Main St", b"")  # compact, like Builder
        root = parse_xml(response)
        no_vat = [t for t in INVOICE_XML_TAGS if t not in ("vat_rate", "vat_amount")]
        assert tags(root) == no_vat
        assert b"<friendly_id/>" in body
        assert b"<paid_at></paid_at><due_on></due_on><issued_on></issued_on>" in body
        assert root.findtext("cost") == "20.0"
        assert [root.findtext("period/from"), root.findtext("period/to")] == [
            "2026-01-01",
            "2026-01-31",
        ]
        assert tags(root.find("provider")) == PARTY_TAGS
        buyer = root.find("buyer")
        assert tags(buyer) == PARTY_TAGS
        assert buyer.findtext("org_name") == "Owner Inc"
        assert b"<state/>" in body
        line = root.find("line-items/line-item")
        assert tags(line) == [
            "id", "name", "description", "quantity", "type", "metric_id", "plan_id",
            "contract_id", "contract_type", "cost",
        ]  # fmt: skip
        assert line.findtext("quantity") == "2"
        assert line.findtext("cost") == "20.0"
        assert b"<type></type>" in body
        assert root.findtext("payment_transactions_count") == "0"

    def test_vat_elements_only_when_rate_positive_and_paid_at_in_ruby_format(
        self, client, key, frozen
    ):
        account = AccountFactory(currency="EUR", vat_rate=Decimal("10"))
        invoice = make_invoice(account=account, lines=[("1", "100")], state=S.PAID)

        root = parse_xml(client.get(url(f"/api/invoices/{invoice.pk}.xml", key)))

        assert tags(root) == INVOICE_XML_TAGS
        assert root.findtext("vat_rate") == "10.0"
        assert root.findtext("vat_amount") == "10.0"
        assert root.findtext("cost") == "110.0"
        assert root.findtext("paid_at") == "2026-01-15 10:20:30 UTC"
        assert root.findtext("currency") == "EUR"

    def test_issued_invoice_shows_frozen_parties(self, client, key):
        account = AccountFactory(org_name="Before Ltd", address_line2="Suite 2")
        invoice = make_invoice(account=account, state=S.PENDING)
        account_update(account=account, org_name="After Ltd")

        root = parse_xml(client.get(url(f"/api/invoices/{invoice.pk}.xml", key)))

        assert root.findtext("buyer/org_name") == "Before Ltd"
        assert root.findtext("buyer/address") == "1 Main St\nSuite 2"
        assert root.findtext("provider/id") == "1"

    def test_deleted_buyer_renders_as_deleted(self, client, key):
        account = AccountFactory()
        invoice = make_invoice(account=account, state=S.PENDING)
        account_soft_delete(account=account)

        body = client.get(url(f"/api/invoices/{invoice.pk}.xml", key)).content

        assert f"<buyer><id>{account.pk}</id><status>deleted</status></buyer>".encode() in body

    def test_invoice_without_lines_has_self_closing_line_items(self, client, key):
        invoice = make_invoice(lines=[])
        body = client.get(url(f"/api/invoices/{invoice.pk}.xml", key)).content
        assert b"<line-items/>" in body

    def test_text_is_escaped(self, client, key):
        account = AccountFactory(org_name='A & B <"Co">', city="\x01Bad")
        invoice = make_invoice(account=account)
        root = parse_xml(client.get(url(f"/api/invoices/{invoice.pk}.xml", key)))
        assert root.findtext("buyer/org_name") == 'A & B <"Co">'
        assert root.findtext("buyer/city") == "\ufffdBad"


# --- lists ------------------------------------------------------------------------------


@pytest.mark.django_db
class TestInvoiceList:
    def test_newest_first_ties_by_id(self, client, key):
        older = make_invoice(now=NOW - dt.timedelta(days=1))
        tie_a = make_invoice(now=NOW)
        tie_b = make_invoice(now=NOW)

        data = client.get(url("/api/invoices.json", key)).json()

        assert [item["invoice"]["id"] for item in data["invoices"]] == [
            tie_b.pk,
            tie_a.pk,
            older.pk,
        ]
        assert "metadata" not in data

    def test_each_item_is_wrapped_and_metadata_only_when_paginated(self, client, key):
        for _ in range(4):
            make_invoice()

        data = client.get(url("/api/invoices.json", key, per_page=1, page=2)).json()

        assert list(data) == ["invoices", "metadata"]
        assert list(data["invoices"][0]) == ["invoice"]
        assert list(data["metadata"].items()) == [
            ("per_page", 1),
            ("total_entries", 4),
            ("total_pages", 4),
            ("current_page", 2),
        ]

    def test_xml_list_always_has_pagination(self, client, key):
        make_invoice()
        response = client.get(url("/api/invoices.xml", key))
        assert response.content.startswith(
            XML_DECLARATION
            + b'<invoices version="1.0"><pagination total_pages="1" current_page="1" '
            b'per_page="20" total_entries="1"/><invoice version="1.0">'
        )

    def test_empty_xml_list(self, client, key):
        response = client.get(url("/api/invoices.xml", key))
        assert response.content == XML_DECLARATION + (
            b'<invoices version="1.0"><pagination total_pages="1" current_page="1" '
            b'per_page="20" total_entries="0"/></invoices>'
        )

    @pytest.mark.parametrize(
        ("params", "expected"),
        [
            ({"state": "paid"}, {"paid"}),
            ({"state": "paid,open"}, {"paid", "open"}),
            ({"state": ["paid", "cancelled"]}, {"paid", "cancelled"}),
            ({"state": "bogus"}, set()),
            ({"state": ""}, {"open", "paid", "cancelled"}),
        ],
    )
    def test_state_filter(self, client, key, params, expected):
        for state in (S.OPEN, S.PAID, S.CANCELLED):
            make_invoice(state=state)

        data = client.get(url("/api/invoices.json", key, **params)).json()

        assert {item["invoice"]["state"] for item in data["invoices"]} == expected

    @pytest.mark.parametrize(
        ("month", "count"),
        [("2025-12", 1), ("2026-01", 2), ("2026-13", 0), ("abc", 0), ("2026-1", 0), ("", 3)],
    )
    def test_month_filter(self, client, key, month, count):
        make_invoice(period=dt.date(2025, 12, 1))
        make_invoice(period=dt.date(2026, 1, 1))
        make_invoice(period=dt.date(2026, 1, 1))

        response = client.get(url("/api/invoices.json", key, month=month))

        assert response.status_code == 200
        assert len(response.json()["invoices"]) == count

    @pytest.mark.parametrize(
        ("params", "page", "per_page", "size"),
        [
            ({"page": "-1"}, 1, 20, 20),
            ({"page": "abc"}, 1, 20, 20),
            ({"page": "0"}, 1, 20, 20),
            ({"page": "2"}, 2, 20, 5),
            ({"page": "3"}, 3, 20, 0),
            ({"page": "99999999999999999999999"}, 1, 20, 20),
            ({"per_page": "abc"}, 1, 20, 20),
            ({"per_page": "21"}, 1, 21, 21),
            ({"per_page": "501"}, 1, 20, 20),
            ({"per_page": "-5"}, 1, 20, 20),
            ({"per_page": "7"}, 1, 7, 7),
        ],
    )
    def test_pagination_parameters_never_fail(self, client, key, params, page, per_page, size):
        for _ in range(25):
            make_invoice(lines=[])

        response = client.get(url("/api/invoices.json", key, **params))

        assert response.status_code == 200
        data = response.json()
        assert len(data["invoices"]) == size
        if params.get("page") == "99999999999999999999999":
            return  # unparsable as a sane page number: the first page
        assert data["metadata"]["current_page"] == page
        assert data["metadata"]["per_page"] == per_page
        assert data["metadata"]["total_entries"] == 25

    def test_page_past_the_end_is_an_empty_list(self, client, key):
        make_invoice()
        assert client.get(url("/api/invoices.json", key, page=5)).json() == {"invoices": []}

    def test_number_filter_with_wildcard(self, client, key):
        first = make_invoice(state=S.PENDING)
        make_invoice(state=S.PENDING)
        data = client.get(url("/api/invoices.json", key, number="2026-*-00000001")).json()
        assert [item["invoice"]["id"] for item in data["invoices"]] == [first.pk]

    @pytest.mark.parametrize("fmt", ["json", "xml"])
    def test_query_count_does_not_grow_with_per_page(self, client, key, fmt):
        for index in range(25):
            make_invoice(account=AccountFactory(), lines=[("1", "1"), ("2", "3")])
            if index % 5 == 0:
                make_invoice(state=S.PAID)
        client.get(url(f"/api/invoices.{fmt}", key))  # warm up: the key's last_used_at

        counts = {}
        for per_page in (1, 20):
            with CaptureQueriesContext(connection) as queries:
                response = client.get(url(f"/api/invoices.{fmt}", key, per_page=per_page))
            assert response.status_code == 200
            counts[per_page] = len(queries)

        assert counts[1] == counts[20]


# --- formats ----------------------------------------------------------------------------


@pytest.mark.django_db
class TestFormats:
    @pytest.mark.parametrize(
        ("accept", "content_type"),
        [
            (None, "application/xml; charset=utf-8"),
            ("*/*", "application/xml; charset=utf-8"),
            ("application/json", "application/json; charset=utf-8"),
            ("application/xml", "application/xml; charset=utf-8"),
            ("text/html,application/json;q=0.9", "application/json; charset=utf-8"),
        ],
    )
    def test_accept_negotiation_without_suffix(self, client, key, accept, content_type):
        headers = {"HTTP_ACCEPT": accept} if accept else {}
        response = client.get(url("/api/invoices", key), **headers)
        assert response.status_code == 200
        assert response["Content-Type"] == content_type
        assert "Accept" in response["Vary"]

    def test_suffix_wins_over_accept(self, client, key):
        response = client.get(url("/api/invoices.json", key), HTTP_ACCEPT="application/xml")
        assert response["Content-Type"].startswith("application/json")

    @pytest.mark.parametrize("path", ["/api/invoices.csv", "/api/invoices/1.html"])
    def test_unknown_suffix_is_406(self, client, key, path):
        assert client.get(url(path, key)).status_code == 406

    def test_unacceptable_accept_is_406(self, client, key):
        response = client.get(url("/api/invoices", key), HTTP_ACCEPT="text/html")
        assert response.status_code == 406


# --- errors and authentication --------------------------------------------------------------


@pytest.mark.django_db
class TestErrors:
    @pytest.mark.parametrize("path", ["/api/invoices/999999", "/api/invoices/abc"])
    def test_not_found(self, client, key, path):
        response = client.get(url(f"{path}.json", key))
        assert response.status_code == 404
        assert response.json() == {"status": "Not found"}
        response = client.get(url(f"{path}.xml", key))
        assert response.status_code == 404
        assert response.content == b""

    def test_access_denied_xml(self, client):
        response = client.get("/api/invoices.xml")
        assert response.status_code == 403
        assert response.content == XML_DECLARATION + b"<error>Access denied</error>"

    def test_unprocessable_xml_has_full_messages(self, client, owner, key):
        response = send_form(
            client,
            "post",
            "/api/invoices.xml",
            key,
            {"account_id": owner.account.pk, "period": "abc"},
        )
        assert response.status_code == 422
        assert response.content == XML_DECLARATION + (
            b"<errors><error>Period Billing period format should be YYYY-MM</error></errors>"
        )

    @pytest.mark.parametrize(
        "body", ["{not json", "[1, 2]", '"text"', '{"account_id": NaN}', "\xff\xfe"]
    )
    def test_malformed_json_body_is_400(self, client, key, body):
        response = client.post(
            url("/api/invoices.json", key), data=body, content_type="application/json"
        )
        assert response.status_code == 400
        assert "error" in response.json()

    def test_malformed_xml_body_is_400(self, client, key):
        response = client.post(
            url("/api/invoices.json", key), data="<invoice><oops>", content_type="application/xml"
        )
        assert response.status_code == 400

    def test_xml_entity_bombs_are_refused(self, client, key):
        bomb = (
            '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">'
            '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]><invoice><period>&b;</period></invoice>'
        )
        response = client.post(
            url("/api/invoices.json", key), data=bomb, content_type="application/xml"
        )
        assert response.status_code == 400

    def test_unsupported_method(self, client, key):
        invoice = make_invoice()
        response = client.delete(url(f"/api/invoices/{invoice.pk}.json", key))
        assert response.status_code == 405


@pytest.mark.django_db
class TestAuthentication:
    def _invoice(self, owner):
        return make_invoice(account=owner.account)

    def test_no_key(self, client, owner):
        invoice = self._invoice(owner)
        response = client.get(f"/api/invoices/{invoice.pk}.json")
        assert (response.status_code, response.json()) == (403, {"error": "Access denied"})

    @pytest.mark.parametrize("raw", ["nonsense", "bk_00000000_" + "x" * 43])
    def test_bad_key(self, client, owner, raw):
        invoice = self._invoice(owner)
        response = client.get(url(f"/api/invoices/{invoice.pk}.json", raw))
        assert (response.status_code, response.json()) == (403, {"error": "Access denied"})

    def test_revoked_key(self, client, owner):
        invoice = self._invoice(owner)
        api_key, raw = make_api_key(scope="write")
        api_key_revoke(api_key=api_key)
        response = client.get(url(f"/api/invoices/{invoice.pk}.json", raw))
        assert (response.status_code, response.json()) == (403, {"error": "Access denied"})

    def test_expired_key(self, client, owner):
        invoice = self._invoice(owner)
        _, raw = make_api_key(scope="write", expires_at=NOW - dt.timedelta(seconds=1))
        response = client.get(url(f"/api/invoices/{invoice.pk}.json", raw))
        assert (response.status_code, response.json()) == (403, {"error": "Access denied"})

    def test_read_key_reads_but_cannot_write(self, client, owner, read_key):
        invoice = self._invoice(owner)
        raw = read_key[1]
        assert client.get(url(f"/api/invoices/{invoice.pk}.json", raw)).status_code == 200
        response = send_json(
            client, "put", f"/api/invoices/{invoice.pk}/state.json", raw, {"state": "cancelled"}
        )
        assert response.status_code == 403
        assert response.json() == {
            "error": "Your access token does not have the correct permissions"
        }
        invoice.refresh_from_db()
        assert invoice.state == S.OPEN

    def test_write_key(self, client, owner, key):
        invoice = self._invoice(owner)
        response = send_json(
            client, "put", f"/api/invoices/{invoice.pk}/state.json", key, {"state": "cancel"}
        )
        assert response.status_code == 200
        assert response.json()["invoice"]["state"] == "cancelled"

    def test_key_of_another_account_sees_nothing(self, client, owner, other):
        invoice = self._invoice(owner)
        make_invoice(account=other.account)
        for path in (
            f"/api/invoices/{invoice.pk}.json",
            f"/api/invoices/{invoice.pk}/line_items.json",
            f"/api/invoices/{invoice.pk}/payment_transactions.json",
            f"/api/accounts/{owner.account.pk}/invoices.json",
            f"/api/accounts/{owner.account.pk}/invoices/{invoice.pk}.json",
        ):
            response = client.get(url(path, other.secret))
            assert (response.status_code, response.json()) == (404, {"status": "Not found"}), path
        response = send_json(
            client, "put", f"/api/invoices/{invoice.pk}/state.json", other.secret, {"state": "paid"}
        )
        assert response.status_code == 404
        listed = client.get(url("/api/invoices.json", other.secret)).json()["invoices"]
        assert {item["invoice"]["links"][0]["href"].rsplit("/", 1)[1] for item in listed} == {
            str(other.account.pk)
        }

    def test_account_key_sees_its_own(self, client, owner):
        invoice = self._invoice(owner)
        response = client.get(url(f"/api/invoices/{invoice.pk}.json", owner.secret))
        assert response.status_code == 200

    def test_provider_key_parameter(self, client, owner, key):
        invoice = self._invoice(owner)
        response = client.get(f"/api/invoices/{invoice.pk}.json?provider_key={key}")
        assert response.status_code == 200

    @pytest.mark.parametrize("userpass", ["{key}:", ":{key}"])
    def test_http_basic_user_or_password(self, client, owner, key, userpass):
        import base64

        invoice = self._invoice(owner)
        token = base64.b64encode(userpass.format(key=key).encode()).decode()
        response = client.get(
            f"/api/invoices/{invoice.pk}.json", HTTP_AUTHORIZATION=f"Basic {token}"
        )
        assert response.status_code == 200

    def test_bearer(self, client, owner, key):
        invoice = self._invoice(owner)
        response = client.get(
            f"/api/invoices/{invoice.pk}.json", HTTP_AUTHORIZATION=f"Bearer {key}"
        )
        assert response.status_code == 200

    def test_access_token_in_json_body(self, client, owner, key):
        response = send_json(
            client,
            "post",
            "/api/invoices.json",
            None,
            {"access_token": key, "account_id": owner.account.pk},
        )
        assert response.status_code == 201

    def test_access_token_in_form_body(self, client, owner, key):
        response = send_form(
            client,
            "post",
            "/api/invoices.json",
            None,
            {"access_token": key, "account_id": owner.account.pk},
        )
        assert response.status_code == 201

    def test_malformed_json_without_key_is_access_denied_not_500(self, client):
        response = client.post("/api/invoices.json", data="{oops", content_type="application/json")
        assert (response.status_code, response.json()) == (403, {"error": "Access denied"})


# --- create and update ----------------------------------------------------------------------


@pytest.mark.django_db
class TestCreate:
    def test_create_json(self, client, owner, key, frozen):
        response = send_json(
            client, "post", "/api/invoices.json", key, {"account_id": owner.account.pk}
        )

        assert response.status_code == 201
        data = response.json()["invoice"]
        assert list(data) == _expected_keys(data)
        assert data["state"] == "open"
        assert data["period"] == {"begin": "2026-01-01", "end": "2026-01-31"}
        assert data["creation_type"] == "manual"
        invoice = Invoice.objects.get(pk=data["id"])
        assert invoice.account == owner.account
        assert invoice.events.get().actor.startswith("api_key:")

    @pytest.mark.parametrize(
        "sender",
        [
            lambda c, k, a: send_json(c, "post", "/api/invoices.json", k, {"account_id": a, "period": "2025-11"}),
            lambda c, k, a: send_json(c, "post", "/api/invoices.json", k, {"account_id": a, "invoice": {"period": "2025-11"}}),
            lambda c, k, a: send_form(c, "post", "/api/invoices.json", k, {"account_id": a, "invoice[period]": "2025-11"}),
            lambda c, k, a: c.post(url("/api/invoices.json", k, account_id=a, period="2025-11")),
            lambda c, k, a: c.post(url("/api/invoices.json", k, account_id=a), data="<invoice><period>2025-11</period></invoice>", content_type="application/xml"),
        ],
    )  # fmt: skip
    def test_period_top_level_or_wrapped(self, client, owner, key, frozen, sender):
        response = sender(client, key, owner.account.pk)
        assert response.status_code == 201, response.content
        assert response.json()["invoice"]["period"]["begin"] == "2025-11-01"

    def test_create_xml(self, client, owner, key):
        response = send_form(
            client, "post", "/api/invoices.xml", key, {"account_id": owner.account.pk}
        )
        assert response.status_code == 201
        assert parse_xml(response).tag == "invoice"

    def test_missing_account_id_is_400_text(self, client, key):
        response = send_json(client, "post", "/api/invoices.json", key, {"period": "2026-01"})
        assert response.status_code == 400
        assert response["Content-Type"].startswith("text/plain")
        assert response.content == b"Required parameter missing: account_id"
        assert not Invoice.objects.exists()

    @pytest.mark.parametrize("account_id", [999999, "abc", "1.5", -3])
    def test_unknown_account_is_422(self, client, key, account_id):
        response = send_json(client, "post", "/api/invoices.json", key, {"account_id": account_id})
        assert response.status_code == 422
        assert response.json() == {"errors": {"buyer_account": ["can't be blank"]}}

    def test_account_key_cannot_bill_another_account(self, client, owner, other):
        response = send_json(
            client, "post", "/api/invoices.json", other.secret, {"account_id": owner.account.pk}
        )
        assert response.status_code == 422
        assert response.json() == {"errors": {"buyer_account": ["can't be blank"]}}

    @pytest.mark.parametrize(
        ("period", "message"),
        [
            ("abc", "Billing period format should be YYYY-MM"),
            ("0007-13", "Billing period format should be YYYY-MM"),
            ("2026-1", "Billing period format should be YYYY-MM"),
            ({"begin": "2026-01-01"}, "Billing period format should be YYYY-MM"),
            ("1999-12", "must be between 2000-01 and 12 months from now"),
            ("2099-01", "must be between 2000-01 and 12 months from now"),
        ],
    )
    def test_bad_period_is_422(self, client, owner, key, frozen, period, message):
        response = send_json(
            client,
            "post",
            "/api/invoices.json",
            key,
            {"account_id": owner.account.pk, "period": period},
        )
        assert response.status_code == 422
        assert response.json() == {"errors": {"period": [message]}}
        assert not Invoice.objects.exists()


@pytest.mark.django_db
class TestUpdate:
    def test_period_and_friendly_id(self, client, key, frozen):
        invoice = make_invoice()
        # a number is accepted only in the invoice's series, and one the series has reached
        InvoiceCounter.objects.create(series="2025-12", last_number=50)
        response = send_json(
            client,
            "put",
            f"/api/invoices/{invoice.pk}.json",
            key,
            {"period": "2025-12", "friendly_id": "2025-12-00000042"},
        )
        assert response.status_code == 200
        data = response.json()["invoice"]
        assert data["period"]["begin"] == "2025-12-01"
        assert data["friendly_id"] == "2025-12-00000042"

    def test_hand_set_number_is_kept_on_issue(self, client, key):
        invoice = make_invoice(period=dt.date(2026, 1, 1))
        InvoiceCounter.objects.create(series="2026-01", last_number=9)
        send_form(
            client, "patch", f"/api/invoices/{invoice.pk}.json", key,
            {"invoice[friendly_id]": "2026-01-00000007"},
        )  # fmt: skip
        response = send_json(
            client, "put", f"/api/invoices/{invoice.pk}/state.json", key, {"state": "pending"}
        )
        assert response.json()["invoice"]["friendly_id"] == "2026-01-00000007"

    def test_whole_document_sent_back_is_ignored_except_allowed_keys(self, client, key, frozen):
        invoice = make_invoice()
        document = client.get(url(f"/api/invoices/{invoice.pk}.json", key)).json()
        document["invoice"]["state"] = "paid"
        document["invoice"]["cost"] = 1
        response = send_json(client, "put", f"/api/invoices/{invoice.pk}.json", key, document)
        assert response.status_code == 200
        invoice.refresh_from_db()
        assert invoice.state == S.OPEN
        assert invoice.cost == Decimal("100")

    @pytest.mark.parametrize("friendly_id", ["abc", "2026-1-00000001", 12, "2026-01-0000001"])
    def test_bad_friendly_id(self, client, key, friendly_id):
        invoice = make_invoice()
        response = send_json(
            client, "put", f"/api/invoices/{invoice.pk}.json", key, {"friendly_id": friendly_id}
        )
        assert response.status_code == 422
        assert response.json() == {
            "errors": {"friendly_id": ["format should be YYYY-MM-XXXXXXXX or YYYY-XXXXXXXX"]}
        }

    def test_issued_invoice_cannot_change(self, client, key):
        invoice = make_invoice(state=S.PENDING)
        response = send_json(
            client, "put", f"/api/invoices/{invoice.pk}.json", key, {"period": "2025-01"}
        )
        assert response.status_code == 422
        assert response.json() == {"errors": {"base": ["Invalid invoice state"]}}


# --- state and charge ----------------------------------------------------------------------


@pytest.mark.django_db
class TestState:
    @pytest.mark.parametrize(
        ("start", "target", "final"),
        [
            (S.OPEN, "finalized", S.FINALIZED),
            (S.OPEN, "pending", S.PENDING),
            (S.PENDING, "unpaid", S.UNPAID),
            (S.PENDING, "paid", S.PAID),
            (S.UNPAID, "failed", S.FAILED),
            (S.FAILED, "paid", S.PAID),
            (S.OPEN, "cancelled", S.CANCELLED),
            (S.UNPAID, "cancel", S.CANCELLED),
        ],
    )
    def test_target_states(self, client, key, start, target, final):
        invoice = make_invoice(state=start)
        response = send_json(
            client, "put", f"/api/invoices/{invoice.pk}/state.json", key, {"state": target}
        )
        assert response.status_code == 200
        assert response.json()["invoice"]["state"] == final
        invoice.refresh_from_db()
        assert invoice.state == final
        assert not PaymentTransaction.objects.filter(invoice=invoice).exists()

    @pytest.mark.parametrize("state", [S.OPEN, S.PENDING, S.UNPAID])
    def test_states_are_3scale_values_never_the_admin_labels(self, client, key, state):
        invoice = make_invoice(state=state)
        as_json = client.get(url(f"/api/invoices/{invoice.pk}.json", key))
        assert as_json.json()["invoice"]["state"] == state.value
        as_xml = client.get(url(f"/api/invoices/{invoice.pk}.xml", key))
        assert parse_xml(as_xml).findtext("state") == state.value
        for body in (as_json.content, as_xml.content):
            assert state.label.encode() not in body  # "Draft", "Awaiting payment", …

    def test_state_as_query_parameter(self, client, key):
        invoice = make_invoice()
        response = client.put(url(f"/api/invoices/{invoice.pk}/state.xml", key, state="cancel"))
        assert response.status_code == 200
        assert parse_xml(response).findtext("state") == "cancelled"

    @pytest.mark.parametrize(
        ("start", "state", "message"),
        [
            (S.OPEN, "issue", "Cannot transition to issue"),
            (S.OPEN, "pay", "Cannot transition to pay"),
            (S.OPEN, "open", "Cannot transition to open"),
            (S.PAID, "pending", "Cannot transition to pending"),
            (S.PAID, "cancelled", "Cannot transition to cancelled"),
            (S.OPEN, "wrong_state", "Cannot transition to wrong_state"),
            (S.OPEN, None, "Cannot transition to "),
        ],
    )
    def test_refused_transitions(self, client, key, start, state, message):
        invoice = make_invoice(state=start)
        body = {} if state is None else {"state": state}
        response = send_json(client, "put", f"/api/invoices/{invoice.pk}/state.json", key, body)
        assert response.status_code == 422
        assert response.json() == {"errors": {"base": [message]}}
        invoice.refresh_from_db()
        assert invoice.state == start


@pytest.mark.django_db
class TestCharge:
    def test_successful_charge_is_201_and_paid(self, client, key):
        invoice = make_invoice(account=AccountFactory(card_token="tok_visa"), state=S.PENDING)
        response = client.post(url(f"/api/invoices/{invoice.pk}/charge.json", key))
        assert response.status_code == 201
        assert response.json()["invoice"]["state"] == "paid"
        assert PaymentTransaction.objects.get(invoice=invoice).success

    def test_not_chargeable(self, client, key):
        invoice = make_invoice()
        response = client.post(url(f"/api/invoices/{invoice.pk}/charge.json", key))
        assert response.status_code == 422
        assert response.json() == {
            "errors": {"state": [f"Invoice {invoice.pk} is not in chargeable state!"]}
        }

    def test_declined_card(self, client, key):
        account = AccountFactory(card_token="tok_chargeDeclined")
        invoice = make_invoice(account=account, state=S.PENDING)
        response = client.post(url(f"/api/invoices/{invoice.pk}/charge.xml", key))
        assert response.status_code == 422
        assert response.content == XML_DECLARATION + (
            b"<errors><error>Failed to charge the credit card.</error></errors>"
        )
        invoice.refresh_from_db()
        assert invoice.state == S.UNPAID
        assert PaymentTransaction.objects.filter(invoice=invoice, success=False).count() == 1


# --- payment transactions ---------------------------------------------------------------------


@pytest.mark.django_db
class TestPaymentTransactions:
    def test_json_and_xml(self, client, key, frozen):
        account = AccountFactory(currency="EUR", vat_rate=Decimal("10"), card_token="tok_visa")
        invoice = make_invoice(account=account, lines=[("1", "100")], state=S.PENDING)
        services.invoice_charge(invoice=invoice, actor="test")
        payment = PaymentTransaction.objects.get(invoice=invoice)

        data = client.get(url(f"/api/invoices/{invoice.pk}/payment_transactions.json", key)).json()

        item = data["payment_transactions"][0]["payment_transaction"]
        assert list(item) == [
            "id", "created_at", "updated_at", "reference", "success", "amount", "currency",
            "action", "message", "test", "links",
        ]  # fmt: skip
        assert item["amount"] == 110.0
        assert (item["success"], item["action"], item["test"]) == (True, "purchase", True)
        assert item["created_at"] == "2026-01-15T10:20:30Z"
        assert [link["rel"] for link in item["links"]] == ["invoice", "account"]

        root = parse_xml(
            client.get(url(f"/api/invoices/{invoice.pk}/payment_transactions.xml", key))
        )
        assert root.tag == "payment_transactions"
        node = root.find("payment_transaction")
        assert tags(node) == [
            "id", "created_at", "updated_at", "invoice_id", "account_id", "reference", "success",
            "amount", "currency", "action", "message", "gateway_response", "test",
        ]  # fmt: skip
        assert node.findtext("invoice_id") == str(invoice.pk)
        assert node.findtext("reference") == payment.reference
        assert node.findtext("gateway_response/code") == "approved"

    def test_recorded_partial_payments_read_as_3scale_purchases(self, client, key):
        invoice = make_invoice(state=S.UNPAID)
        services.invoice_payment_record(
            invoice=invoice, amount=Decimal("30"), paid_on=invoice.issued_on, actor="test"
        )
        data = client.get(url(f"/api/invoices/{invoice.pk}/payment_transactions.json", key)).json()
        item = data["payment_transactions"][0]["payment_transaction"]
        assert (item["action"], item["amount"], item["success"]) == ("purchase", 30.0, True)
        root = parse_xml(
            client.get(url(f"/api/invoices/{invoice.pk}/payment_transactions.xml", key))
        )
        assert root.find("payment_transaction").findtext("action") == "purchase"
        # and the invoice keeps 3scale's fields, no new ones
        document = client.get(url(f"/api/invoices/{invoice.pk}.json", key)).json()
        assert "amount_due" not in json.dumps(document)

    def test_empty_list(self, client, key):
        invoice = make_invoice()
        response = client.get(url(f"/api/invoices/{invoice.pk}/payment_transactions.xml", key))
        assert (
            response.content == XML_DECLARATION + b"<payment_transactions></payment_transactions>"
        )
        response = client.get(url(f"/api/invoices/{invoice.pk}/payment_transactions.json", key))
        assert response.json() == {"payment_transactions": []}


# --- account-scoped ---------------------------------------------------------------------------


@pytest.mark.django_db
class TestAccountScoped:
    def test_list_and_read(self, client, owner, other, key):
        mine = make_invoice(account=owner.account)
        theirs = make_invoice(account=other.account)
        base = f"/api/accounts/{owner.account.pk}/invoices"

        data = client.get(url(f"{base}.json", key)).json()
        assert [item["invoice"]["id"] for item in data["invoices"]] == [mine.pk]
        assert client.get(url(f"{base}/{mine.pk}.json", key)).status_code == 200
        # 3scale 2.16: an invoice of another buyer is not found under this one.
        assert client.get(url(f"{base}/{theirs.pk}.json", key)).status_code == 404
        assert parse_xml(client.get(url(f"{base}.xml", key))).find("pagination") is not None

    @pytest.mark.parametrize("account_id", ["999999", "abc"])
    def test_unknown_account(self, client, key, account_id):
        response = client.get(url(f"/api/accounts/{account_id}/invoices.json", key))
        assert (response.status_code, response.json()) == (404, {"status": "Not found"})

    def test_deleted_account_keeps_its_invoices(self, client, key):
        account = AccountFactory()
        invoice = make_invoice(account=account, state=S.PAID)
        account_soft_delete(account=account)
        response = client.get(url(f"/api/accounts/{account.pk}/invoices.xml", key))
        assert response.status_code == 200
        assert parse_xml(response).findtext("invoice/buyer/status") == "deleted"
        assert client.get(url(f"/api/invoices/{invoice.pk}.json", key)).status_code == 200


# --- conditional GET --------------------------------------------------------------------------


@pytest.mark.django_db
class TestConditionalGet:
    def test_etag_and_last_modified(self, client, key):
        invoice = make_invoice()
        path = url(f"/api/invoices/{invoice.pk}.json", key)
        first = client.get(path)
        etag, last_modified = first["ETag"], first["Last-Modified"]

        assert client.get(path, HTTP_IF_NONE_MATCH=etag).status_code == 304
        assert client.get(path, HTTP_IF_MODIFIED_SINCE=last_modified).status_code == 304
        other_format = client.get(url(f"/api/invoices/{invoice.pk}.xml", key))
        assert other_format["ETag"] != etag

        services.line_item_add(invoice=invoice, name="More", unit_price=Decimal("1"), actor="test")
        changed = client.get(path, HTTP_IF_NONE_MATCH=etag)
        assert changed.status_code == 200
        assert changed["ETag"] != etag

    def test_list_has_etag(self, client, key):
        make_invoice()
        first = client.get(url("/api/invoices.json", key))
        again = client.get(url("/api/invoices.json", key), HTTP_IF_NONE_MATCH=first["ETag"])
        assert again.status_code == 304


# --- PDF ----------------------------------------------------------------------------------------


@pytest.mark.django_db
class TestPdf:
    def test_redirects_to_a_signed_link_that_serves_the_pdf(self, client, key):
        invoice = make_invoice(state=S.PENDING)

        response = client.get(url(f"/api/invoices/{invoice.pk}.pdf", key))

        assert response.status_code == 302
        link = response["Location"]
        assert link.startswith("http://testserver/api/invoice_pdfs/")
        pdf = client.get(link)
        assert pdf.status_code == 200
        assert pdf["Content-Type"] == "application/pdf"
        assert b"".join(pdf.streaming_content if pdf.streaming else [pdf.content]).startswith(
            b"%PDF"
        )

    def test_serves_the_stored_file(self, client, key, settings, tmp_path):
        from django.core.files.base import ContentFile

        settings.MEDIA_ROOT = str(tmp_path)
        invoice = make_invoice(state=S.PENDING)
        invoice.pdf.save("stored.pdf", ContentFile(b"%PDF-1.4 stored"), save=True)

        link = client.get(url(f"/api/invoices/{invoice.pk}.pdf", key))["Location"]
        pdf = client.get(link)

        assert b"".join(pdf.streaming_content) == b"%PDF-1.4 stored"

    def test_any_accept_header(self, client, key):
        invoice = make_invoice()
        response = client.get(
            url(f"/api/invoices/{invoice.pk}.pdf", key), HTTP_ACCEPT="application/pdf"
        )
        assert response.status_code == 302

    def test_tampered_link_is_refused(self, client, key):
        invoice = make_invoice()
        other_invoice = make_invoice()
        link = client.get(url(f"/api/invoices/{invoice.pk}.pdf", key))["Location"]
        token = link.rsplit("/", 1)[1]
        forged = token.replace(f"{invoice.pk}:", f"{other_invoice.pk}:", 1)
        assert client.get(f"/api/invoice_pdfs/{forged}").status_code == 403
        assert client.get("/api/invoice_pdfs/garbage").status_code == 403

    def test_expired_link_is_refused(self, client, key, settings):
        invoice = make_invoice()
        with time_machine.travel(NOW, tick=False) as traveller:
            link = client.get(url(f"/api/invoices/{invoice.pk}.pdf", key))["Location"]
            traveller.shift(dt.timedelta(seconds=settings.INVOICE_PDF_LINK_MAX_AGE + 1))
            assert client.get(link).status_code == 410

    def test_needs_a_key_and_visibility(self, client, owner, other):
        invoice = make_invoice(account=owner.account)
        assert client.get(f"/api/invoices/{invoice.pk}.pdf").status_code == 403
        assert client.get(url(f"/api/invoices/{invoice.pk}.pdf", other.secret)).status_code == 404


class TestAsThreeScaleAnswers:
    """Answers a 3scale client can tell apart, matched to 3scale's."""

    def test_created_invoice_and_line_carry_location(self, client, key):
        account = AccountFactory()
        response = send_json(client, "post", "/api/invoices.json", key, {"account_id": account.pk})
        assert response.status_code == 201
        invoice_id = response.json()["invoice"]["id"]
        assert response["Location"] == f"http://testserver/api/invoices/{invoice_id}"
        line = send_json(
            client,
            "post",
            f"/api/invoices/{invoice_id}/line_items.json",
            key,
            {"name": "Plan", "cost": "10.00"},
        )
        assert line.status_code == 201
        line_id = line.json()["line_item"]["id"]
        assert line["Location"].endswith(f"/api/invoices/{invoice_id}/line_items/{line_id}")

    @pytest.mark.parametrize("body", [{}, {"unknown": "x"}])
    def test_update_without_an_invoice_attribute_is_400(self, client, key, body):
        invoice = make_invoice()
        response = send_json(client, "put", f"/api/invoices/{invoice.pk}.json", key, body)
        assert response.status_code == 400
        assert response["Content-Type"].startswith("text/plain")
        assert response.content == b"Required parameter missing: invoice"

    @pytest.mark.parametrize(
        "path", ["/api/invoices.csv", "/api/invoices.json?format=AAA", "/api/invoices?format="]
    )
    def test_unknown_format_is_406_text(self, client, key, path):
        joiner = "&" if "?" in path else "?"
        response = client.get(f"{path}{joiner}access_token={key}")
        assert response.status_code == 406
        assert response["Content-Type"].startswith("text/plain")
        assert response.content.startswith(b"The server does not understand")

    def test_unknown_admin_api_path_is_404_not_the_login_page(self, client, key):
        response = client.get(url("/admin/api/applications.json", key))
        assert response.status_code == 404
        assert "login" not in response.get("Location", "")

    def test_per_page_follows_the_code_range(self, client, key):
        for _ in range(22):
            make_invoice(lines=[])
        data = client.get(url("/api/invoices.json", key, per_page=21)).json()
        assert len(data["invoices"]) == 21
        data = client.get(url("/api/invoices.json", key, per_page=501)).json()
        assert data["metadata"]["per_page"] == 20
