"""Query shapes the benchmarks depend on: deep 3scale pages found by id, no DISTINCT in /v1."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from billing.api import pagination
from invoices.models import Invoice
from tests.factories import AccountFactory, make_invoice
from tests.support.threescale import parse_xml, url

State = Invoice.State


@pytest.fixture
def invoices(db) -> list[Invoice]:
    """Seven invoices, newest first (the lists' order)."""
    made = [make_invoice(account=AccountFactory(), state=State.PENDING) for _ in range(7)]
    return sorted(made, key=lambda invoice: (invoice.created_at, invoice.pk), reverse=True)


@pytest.mark.parametrize("deferred_from", [0, 2, 1000])
def test_every_page_holds_the_same_invoices_whichever_way_it_is_fetched(
    client, admin_key, invoices, monkeypatch, deferred_from
):
    # given deep pages start at `deferred_from` (0: every page is found by its ids first)
    monkeypatch.setattr(pagination, "DEFERRED_JOIN_OFFSET", deferred_from)
    expected = [invoice.pk for invoice in invoices]

    # when every page of 2 is read, in both formats
    json_ids, xml_ids = [], []
    for page in range(1, 5):
        data = client.get(url("/api/invoices.json", admin_key[1], page=page, per_page=2)).json()
        json_ids += [item["invoice"]["id"] for item in data["invoices"]]
        root = parse_xml(client.get(url("/api/invoices.xml", admin_key[1], page=page, per_page=2)))
        xml_ids += [int(element.findtext("id")) for element in root.findall("invoice")]
        assert root.find("pagination").get("total_entries") == "7"

    # then the pages are the list, newest first, nothing lost or repeated
    assert json_ids == expected
    assert xml_ids == expected


def test_a_deep_page_reads_ids_from_the_index_then_only_its_rows(
    client, admin_key, invoices, monkeypatch, settings
):
    settings.API_FAST_READS = False  # REST framework's path (fast reads: one statement)
    monkeypatch.setattr(pagination, "DEFERRED_JOIN_OFFSET", 2)
    client.get(url("/api/invoices.json", admin_key[1]))  # the key's last_used_at

    with CaptureQueriesContext(connection) as queries:
        response = client.get(url("/api/invoices.json", admin_key[1], page=2, per_page=2))

    assert response.status_code == 200
    invoice_selects = [
        q["sql"]
        for q in queries
        if 'FROM "invoices_invoice"' in q["sql"] and "COUNT" not in q["sql"]
    ]
    assert invoice_selects[0].startswith('SELECT "invoices_invoice"."id" AS "pk" FROM')
    assert "OFFSET 2" in invoice_selects[0]
    assert "OFFSET" not in invoice_selects[1] and " IN (" in invoice_selects[1]


def test_v1_state_filter_adds_no_distinct(owner, invoices):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {owner.secret}")
    make_invoice(account=owner.account, state=State.PAID)
    make_invoice(account=owner.account, state=State.PENDING)

    with CaptureQueriesContext(connection) as queries:
        response = api.get("/v1/invoices?state=paid,pending&status=pending")

    assert response.status_code == 200
    assert [item["status"] for item in response.json()] == ["pending"]
    assert not [q["sql"] for q in queries if "DISTINCT" in q["sql"]]
