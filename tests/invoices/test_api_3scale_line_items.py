"""Line items of the 3scale API: list, create (cost is the line total), delete."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine

from invoices import services
from invoices.models import Invoice, LineItem
from tests.factories import make_invoice
from tests.support.threescale import (
    XML_DECLARATION,
    parse_xml,
    send_form,
    send_json,
    tags,
    url,
)

NOW = dt.datetime(2026, 1, 15, 10, 21, tzinfo=dt.UTC)
S = Invoice.State
LINE_XML_TAGS = [
    "id", "name", "description", "quantity", "type", "metric_id", "plan_id", "contract_id",
    "contract_type", "cost",
]  # fmt: skip


@pytest.fixture
def key(admin_key) -> str:
    return admin_key[1]


def _path(invoice, suffix=".json") -> str:
    return f"/api/invoices/{invoice.pk}/line_items{suffix}"


@pytest.mark.django_db
class TestList:
    def test_wrappers_follow_the_line_type(self, client, owner, key):
        invoice = make_invoice(account=owner.account, lines=[("1", "5")])
        for kind in (LineItem.Type.PLAN_FEE, LineItem.Type.USAGE):
            services.line_item_add(
                invoice=invoice, name=kind, unit_price=Decimal("1"), type=kind, actor="t",
                plan_id=9 if kind == LineItem.Type.PLAN_FEE else None,
            )  # fmt: skip

        items = client.get(url(_path(invoice), key)).json()["line_items"]

        assert [list(item) for item in items] == [["line_item"], ["plan_cost"], ["variable_cost"]]
        assert items[0]["line_item"]["type"] == ""
        assert items[1]["plan_cost"]["type"] == "LineItem::PlanCost"
        assert items[1]["plan_cost"]["plan_id"] == 9
        assert items[2]["variable_cost"]["type"] == "LineItem::VariableCost"
        assert "plan_id" not in items[0]["line_item"]

    def test_xml_list_has_underscore_root_and_dashed_children(self, client, key):
        invoice = make_invoice(lines=[("1", "5"), ("2", "1.5")])
        root = parse_xml(client.get(url(_path(invoice, ".xml"), key)))
        assert root.tag == "line_items"
        assert tags(root) == ["line-item", "line-item"]
        assert tags(root[0]) == LINE_XML_TAGS

    def test_empty_lists(self, client, key):
        invoice = make_invoice(lines=[])
        assert client.get(url(_path(invoice), key)).json() == {"line_items": []}
        assert client.get(url(_path(invoice, ".xml"), key)).content == (
            XML_DECLARATION + b"<line_items></line_items>"
        )


@pytest.mark.django_db
class TestCreate:
    def test_create_json_exact_document(self, client, owner, key):
        invoice = make_invoice(account=owner.account, lines=[])
        with time_machine.travel(NOW, tick=False):
            response = send_json(
                client,
                "post",
                _path(invoice),
                key,
                {"name": "Support", "description": "test_item", "cost": 10},
            )

        assert response.status_code == 201
        line = LineItem.objects.get(invoice=invoice)
        expected = (
            '{"line_item":{"id":LINE,"name":"Support","description":"test_item","quantity":1,'
            '"cost":10.0,"type":"","created_at":"2026-01-15T10:21:00Z",'
            '"updated_at":"2026-01-15T10:21:00Z","links":[{"rel":"invoice",'
            '"href":"http://testserver/api/accounts/ACCOUNT/invoices/INVOICE"}]}}'
        )
        expected = expected.replace("LINE", str(line.pk)).replace("ACCOUNT", str(owner.account.pk))
        assert response.content.decode() == expected.replace("INVOICE", str(invoice.pk))
        invoice.refresh_from_db()
        assert invoice.cost == Decimal("10")

    def test_cost_is_the_line_total(self, client, key):
        invoice = make_invoice(lines=[])
        response = send_json(
            client, "post", _path(invoice), key, {"name": "Seats", "quantity": 3, "cost": "10"}
        )
        assert response.status_code == 201
        assert response.json()["line_item"]["cost"] == 10.0
        assert response.json()["line_item"]["quantity"] == 3
        invoice.refresh_from_db()
        assert invoice.cost_without_vat == Decimal("10.00")

    def test_typed_line_in_form_and_xml(self, client, key):
        invoice = make_invoice(lines=[])
        response = send_form(
            client,
            "post",
            _path(invoice, ".xml"),
            key,
            {
                "line_item[name]": "Fixed fee ('Basic')",
                "line_item[cost]": "100",
                "line_item[type]": "LineItem::PlanCost",
                "line_item[plan_id]": "9",
                "line_item[contract_id]": "12",
            },
        )
        assert response.status_code == 201
        root = parse_xml(response)
        assert root.tag == "line-item"
        assert tags(root) == LINE_XML_TAGS
        assert [root.findtext(t) for t in ("type", "plan_id", "contract_id", "contract_type")] == [
            "LineItem::PlanCost",
            "9",
            "12",
            "Cinstance",
        ]
        assert root.findtext("cost") == "100.0"

    def test_typed_line_json_wrapper_and_application_link(self, client, owner, key):
        invoice = make_invoice(account=owner.account, lines=[])
        response = send_json(
            client,
            "post",
            _path(invoice),
            key,
            {"name": "Calls", "cost": "0.1", "type": "LineItem::VariableCost", "contract_id": 12},
        )
        data = response.json()["variable_cost"]
        assert data["cost"] == 0.1
        assert [link["rel"] for link in data["links"]] == ["application", "invoice"]
        assert data["links"][0]["href"].endswith(
            f"/admin/api/accounts/{owner.account.pk}/applications/12"
        )

    @pytest.mark.parametrize(
        ("body", "errors"),
        [
            ({"name": "X", "cost": "abc"}, {"cost": ["is not a number"]}),
            ({"name": "X", "cost": "$5.50"}, {"cost": ["is not a number"]}),
            ({"name": "X", "cost": "NaN"}, {"cost": ["is not a number"]}),
            ({"name": "X", "cost": True}, {"cost": ["is not a number"]}),
            ({"name": "X"}, {"cost": ["can't be blank"]}),
            ({"name": "X", "cost": "-1"}, {"cost": ["must not be negative"]}),
            ({"name": "X", "cost": "1", "quantity": "lots"}, {"quantity": ["is not a number"]}),
            ({"name": "X", "cost": "1", "quantity": 0}, {"quantity": ["must be greater than 0"]}),
            ({"name": "", "cost": "1"}, {"name": ["can't be blank"]}),
            ({"name": "X", "cost": "1", "type": "LineItem::Bogus"}, {"base": ["Invalid Line item type"]}),
            ({"name": "X", "cost": "1", "metric_id": "m1"}, {"metric_id": ["is not a number"]}),
            ({"name": {"a": 1}, "cost": "1"}, {"name": ["is invalid"]}),
            ({"name": "X", "cost": "1e20"}, {"cost": ["must be at most 999999999999.99"]}),
            ({"name": "X", "cost": "1", "quantity": "1e-30"}, {"quantity": ["must have at most 4 decimal places"]}),
        ],
    )  # fmt: skip
    def test_bad_input_is_422_and_writes_nothing(self, client, key, body, errors):
        invoice = make_invoice(lines=[])
        response = send_json(client, "post", _path(invoice), key, body)
        assert response.status_code == 422
        assert response.json() == {"errors": errors}
        assert not LineItem.objects.filter(invoice=invoice).exists()

    def test_form_cost_abc_is_422(self, client, key):
        invoice = make_invoice(lines=[])
        response = send_form(client, "post", _path(invoice), key, {"name": "X", "cost": "abc"})
        assert response.status_code == 422
        assert response.json() == {"errors": {"cost": ["is not a number"]}}

    def test_issued_invoice_refuses_lines(self, client, key):
        invoice = make_invoice(state=S.PENDING)
        response = send_json(client, "post", _path(invoice), key, {"name": "X", "cost": "1"})
        assert response.status_code == 422
        assert response.json() == {"errors": {"base": ["Invalid invoice state"]}}

    def test_read_key_cannot_add(self, client, read_key):
        invoice = make_invoice(lines=[])
        response = send_json(client, "post", _path(invoice), read_key[1], {"name": "X", "cost": 1})
        assert response.status_code == 403


@pytest.mark.django_db
class TestDelete:
    def test_delete_is_200_with_empty_body(self, client, key):
        invoice = make_invoice(lines=[("1", "5"), ("1", "7")])
        line = invoice.line_items.first()
        response = client.delete(url(f"/api/invoices/{invoice.pk}/line_items/{line.pk}.json", key))
        assert response.status_code == 200
        assert response.content == b""
        invoice.refresh_from_db()
        assert invoice.cost == Decimal("7")

    def test_issued_invoice_is_403(self, client, key):
        invoice = make_invoice(state=S.PENDING)
        line = invoice.line_items.first()
        response = client.delete(url(f"/api/invoices/{invoice.pk}/line_items/{line.pk}.json", key))
        assert response.status_code == 403
        assert response.json() == {"errors": {"base": ["Invalid invoice state"]}}
        response = client.delete(url(f"/api/invoices/{invoice.pk}/line_items/{line.pk}.xml", key))
        assert response.content == XML_DECLARATION + (
            b"<errors><error>Invalid invoice state</error></errors>"
        )
        assert LineItem.objects.filter(pk=line.pk).exists()

    @pytest.mark.parametrize("line_id", ["other", "999999", "abc"])
    def test_line_of_another_invoice_or_unknown_is_404(self, client, key, line_id):
        invoice = make_invoice()
        other_invoice = make_invoice()
        if line_id == "other":
            line_id = str(other_invoice.line_items.first().pk)
        response = client.delete(url(f"/api/invoices/{invoice.pk}/line_items/{line_id}.json", key))
        assert (response.status_code, response.json()) == (404, {"status": "Not found"})
        assert other_invoice.line_items.count() == 1

    def test_other_account_key_is_404(self, client, owner, other):
        invoice = make_invoice(account=owner.account)
        line = invoice.line_items.first()
        response = client.delete(
            url(f"/api/invoices/{invoice.pk}/line_items/{line.pk}.json", other.secret)
        )
        assert response.status_code == 404
        assert LineItem.objects.filter(pk=line.pk).exists()
