"""Stored representations (invoices.representations): what is stored is what a fresh
render gives, whatever happened to the invoice; reads serve it in one query."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from accounts.models import Account, Seller
from accounts.services import account_soft_delete, account_update
from billing.api.threescale.renderers import (
    Document,
    ThreeScaleJSONRenderer,
    ThreeScaleXMLRenderer,
)
from billing.api.threescale.xml import Raw
from billing.lib.json_codec import dumps
from invoices import representations, services
from invoices.api.threescale import representations as threescale
from invoices.api.threescale.documents import invoice_document
from invoices.api.v1.serializers import InvoiceSerializer
from invoices.exceptions import InvoiceError
from invoices.models import Invoice, InvoiceRepresentation, LineItem
from invoices.selectors import invoice_list_with_details
from tests.factories import ACTOR, AccountFactory, make_invoice
from tests.support.threescale import url

Kind = InvoiceRepresentation.Kind
State = Invoice.State
BASE = "http://testserver"


# --- the oracle: the representations as the APIs rendered them before they were stored ---


def _request(renderer) -> SimpleNamespace:
    return SimpleNamespace(accepted_renderer=renderer, build_absolute_uri=lambda path: BASE + path)


def fresh_bytes(invoice_id: int, kind: str) -> bytes:
    """What the endpoints answered before anything was stored, rendered now."""
    if kind == Kind.V1_JSON:
        invoice = invoice_list_with_details(None).get(pk=invoice_id)
        return dumps(InvoiceSerializer(invoice).data).encode()
    renderer = ThreeScaleXMLRenderer() if kind == Kind.THREESCALE_XML else ThreeScaleJSONRenderer()
    invoice = Invoice.objects.select_related("account").get(pk=invoice_id)
    return renderer.render(invoice_document(_request(renderer), invoice))


def stored_bytes(invoice_id: int, kind: str) -> bytes | None:
    """The same answer built from the stored row, None when there is none of this version."""
    row = InvoiceRepresentation.objects.filter(
        invoice_id=invoice_id, kind=kind, format_version=representations.format_version()
    ).first()
    if row is None:
        return None
    if kind == Kind.V1_JSON:
        return row.body.encode()
    if kind == Kind.THREESCALE_XML:
        return ThreeScaleXMLRenderer().render(Document(xml=Raw(row.body)))
    links = threescale.Links(_request(None))
    document = Document(json={"invoice": threescale.invoice_json_stored(row.body, links)})
    return ThreeScaleJSONRenderer().render(document)


def assert_nothing_stale() -> None:
    """Every stored row is what a fresh render gives, byte for byte."""
    for invoice_id, kind in InvoiceRepresentation.objects.values_list("invoice_id", "kind"):
        assert stored_bytes(invoice_id, kind) == fresh_bytes(invoice_id, kind), (invoice_id, kind)


# --- random histories ---------------------------------------------------------------------

amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("500"), places=2)
steps = st.one_of(
    st.tuples(st.just("create"), st.integers(0, 1)),
    st.tuples(st.just("add_line"), st.integers(0, 3), amounts, st.integers(1, 3)),
    st.tuples(st.just("replace_lines"), st.integers(0, 3), amounts),
    st.tuples(st.just("remove_line"), st.integers(0, 3)),
    st.tuples(st.just("finalize"), st.integers(0, 3)),
    st.tuples(st.just("issue"), st.integers(0, 3)),
    st.tuples(st.just("pay_part"), st.integers(0, 3), amounts),
    st.tuples(st.just("mark_paid"), st.integers(0, 3)),
    st.tuples(st.just("charge"), st.integers(0, 3), st.booleans()),
    st.tuples(st.just("credit"), st.integers(0, 3), amounts),
    st.tuples(st.just("cancel"), st.integers(0, 3)),
    st.tuples(st.just("rename_account"), st.integers(0, 1), st.text("abcXYZ &<>é", max_size=8)),
    st.tuples(st.just("delete_account"), st.integers(0, 1)),
    st.tuples(st.just("rename_seller"), st.text("abc <&>", min_size=1, max_size=8)),
    st.tuples(st.just("billing_run"), st.integers(0, 1), amounts),
    st.tuples(st.just("read"), st.integers(0, 3)),
)


def _apply(step, accounts: list[Account], now: dt.datetime) -> None:
    name, *args = step
    invoices = list(Invoice.objects.order_by("pk"))

    def invoice(index: int) -> Invoice | None:
        return invoices[index % len(invoices)] if invoices else None

    if name == "create":
        services.invoice_create(account=accounts[args[0]], actor=ACTOR, now=now)
    elif name == "rename_account":
        account = Account.objects.get(pk=accounts[args[0]].pk)
        if not account.is_deleted:
            account_update(account=account, org_name=f"Org {args[1]}", city=args[1])
    elif name == "delete_account":
        account_soft_delete(account=accounts[args[0]])
    elif name == "rename_seller":
        seller = Seller.load()
        seller.name = args[0]
        seller.save()
    elif name == "billing_run":
        spec = services.LineSpec(
            name="Usage", quantity=Decimal(1), unit_price=args[1], type="usage", source="usage:x"
        )
        services.invoices_upsert_background_lines(
            period=now.date().replace(day=1),
            lines_by_account={accounts[args[0]].pk: [spec]},
            actor=ACTOR,
            now=now,
        )
    elif (target := invoice(args[0])) is None:
        return
    elif name == "add_line":
        services.line_item_add(
            invoice=target, name="Item", quantity=Decimal(args[2]), unit_price=args[1], actor=ACTOR
        )
    elif name == "replace_lines":
        services.invoice_replace_lines(
            invoice=target, lines=[services.NewLine(name="New", unit_price=args[1])], actor=ACTOR
        )
    elif name == "remove_line":
        line = LineItem.objects.filter(invoice=target).first()
        if line is not None:
            services.line_item_remove(line_item=line, actor=ACTOR)
    elif name == "finalize":
        services.invoice_finalize(invoice=target, actor=ACTOR)
    elif name == "issue":
        services.invoice_issue(invoice=target, actor=ACTOR)
    elif name == "pay_part":
        services.invoice_payment_record(
            invoice=target, amount=args[1], paid_on=now.date(), actor=ACTOR
        )
    elif name == "mark_paid":
        services.invoice_mark_paid(invoice=target, actor=ACTOR)
    elif name == "charge":
        Account.objects.filter(pk=target.account_id).update(
            card_token="tok_visa" if args[1] else "tok_chargeDeclined"
        )
        services.invoice_charge(invoice=target, actor=ACTOR, automatic=True)
    elif name == "credit":
        services.credit_note_create(
            invoice=target, reason="Correction", amount=args[1], actor=ACTOR
        )
    elif name == "cancel":
        services.invoice_cancel(invoice=target, actor=ACTOR)
    elif name == "read":
        for kind in representations.KINDS:
            rows = list(representations.with_stored(Invoice.objects.filter(pk=target.pk), kind))
            representations.bodies(rows, kind)


@pytest.mark.django_db
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=st.lists(steps, min_size=1, max_size=14))
def test_stored_representations_equal_a_fresh_render_after_any_history(
    history, django_capture_on_commit_callbacks
):
    now = dt.datetime.now(dt.UTC)
    with transaction.atomic():
        accounts = [AccountFactory(vat_rate=Decimal("21")), AccountFactory()]
        for step in history:
            # Each service call commits (its callbacks run: the render after commit).
            with django_capture_on_commit_callbacks(execute=True):
                try:
                    with transaction.atomic():
                        _apply(step, accounts, now)
                except InvoiceError:
                    pass  # refused as a whole: nothing was written
            assert_nothing_stale()
        # A read renders what is missing (a seller edit leaves it to reads), and stores it.
        for kind in representations.KINDS:
            rows = list(representations.with_stored(Invoice.objects.all(), kind))
            representations.bodies(rows, kind)
        assert InvoiceRepresentation.objects.count() == 3 * Invoice.objects.count()
        assert_nothing_stale()
        transaction.set_rollback(True)


# --- writes renew, reads fill ----------------------------------------------------------------


@pytest.mark.django_db
def test_a_service_stores_with_its_change_and_a_refused_one_leaves_the_rows():
    invoice = make_invoice(state=State.PENDING)
    assert InvoiceRepresentation.objects.filter(invoice=invoice).count() == 3
    assert_nothing_stale()

    with pytest.raises(InvoiceError):
        services.line_item_add(invoice=invoice, name="x", unit_price=Decimal(1), actor=ACTOR)
    assert InvoiceRepresentation.objects.filter(invoice=invoice).count() == 3
    assert_nothing_stale()


@pytest.mark.django_db
def test_a_large_change_deletes_the_rows_and_renders_them_after_commit(
    monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(representations, "EAGER_RENDER_LIMIT", 1)
    invoices = [make_invoice(), make_invoice()]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        representations.invoices_changed(invoice.pk for invoice in invoices)
    assert not InvoiceRepresentation.objects.exists()
    monkeypatch.setattr(representations.settings, "CELERY_TASK_ALWAYS_EAGER", False)
    queued: list[list[int]] = []
    monkeypatch.setattr(representations.render_representations, "delay", queued.append)
    for callback in callbacks:
        callback()
    assert queued == [sorted(invoice.pk for invoice in invoices)]
    assert representations.render_representations(queued[0]) == 2
    assert_nothing_stale()


@pytest.mark.django_db
def test_an_account_change_renews_what_shows_it(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        draft = make_invoice()
        issued = make_invoice(account=draft.account, state=State.PENDING)
    with django_capture_on_commit_callbacks(execute=True):
        account_update(account=draft.account, org_name="Renamed & Co")
    assert b"Renamed &amp; Co" in stored_bytes(draft.pk, Kind.THREESCALE_XML)
    assert b"Renamed & Co" in stored_bytes(draft.pk, Kind.V1_JSON)
    assert b"Renamed" not in stored_bytes(issued.pk, Kind.THREESCALE_XML)  # frozen at issue
    with django_capture_on_commit_callbacks(execute=True):
        account_soft_delete(account=draft.account)
    assert b"<status>deleted</status>" in stored_bytes(issued.pk, Kind.THREESCALE_XML)
    assert_nothing_stale()


@pytest.mark.django_db
def test_a_seller_change_is_rendered_on_the_next_read(client, admin_key):
    draft = make_invoice()
    client.get(url(f"/api/invoices/{draft.pk}.xml", admin_key[1]))
    seller = Seller.load()
    seller.name = "New Seller Name"
    seller.save()
    assert stored_bytes(draft.pk, Kind.THREESCALE_XML) is None
    response = client.get(url(f"/api/invoices/{draft.pk}.xml", admin_key[1]))
    assert b"<org_name>New Seller Name</org_name>" in response.content
    assert stored_bytes(draft.pk, Kind.THREESCALE_XML) == response.content


@pytest.mark.django_db
def test_rows_of_another_format_version_are_rendered_again(client, admin_key):
    invoice = make_invoice(state=State.PAID)
    InvoiceRepresentation.objects.filter(invoice=invoice, kind=Kind.THREESCALE_JSON).update(
        format_version="0-old", body='{"old":1}'
    )
    response = client.get(url(f"/api/invoices/{invoice.pk}.json", admin_key[1]))
    assert b"old" not in response.content
    assert response.content == fresh_bytes(invoice.pk, Kind.THREESCALE_JSON)
    row = InvoiceRepresentation.objects.get(invoice=invoice, kind=Kind.THREESCALE_JSON)
    assert row.format_version == representations.format_version()


@pytest.mark.django_db
def test_links_carry_the_host_of_each_request_never_a_stored_one(client, admin_key):
    invoice = make_invoice()
    first = client.get(url(f"/api/invoices/{invoice.pk}.json", admin_key[1]))
    other = client.get(
        url(f"/api/invoices/{invoice.pk}.json", admin_key[1]), HTTP_HOST="localhost:8000"
    )
    assert f"{BASE}/api/invoices/{invoice.pk}" in first.json()["invoice"]["links"][1]["href"]
    assert other.json()["invoice"]["links"][1]["href"] == (
        f"http://localhost:8000/api/invoices/{invoice.pk}"
    )
    row = InvoiceRepresentation.objects.get(invoice=invoice, kind=Kind.THREESCALE_JSON)
    assert "testserver" not in row.body and "localhost" not in row.body


@pytest.mark.django_db
def test_backfill_renders_what_is_missing_and_nothing_twice():
    invoices = [make_invoice(state=state) for state in (State.OPEN, State.PAID, State.CANCELLED)]
    assert representations.missing_ids(Invoice.objects.all()) == []  # the services stored them
    InvoiceRepresentation.objects.filter(invoice=invoices[0]).delete()
    InvoiceRepresentation.objects.filter(invoice=invoices[1], kind=Kind.V1_JSON).delete()
    InvoiceRepresentation.objects.filter(invoice=invoices[2]).update(format_version="0-old")
    assert representations.missing_ids(Invoice.objects.all()) == sorted(
        invoice.pk for invoice in invoices
    )
    call_command("render_representations", batch_size=2)
    assert representations.missing_ids(Invoice.objects.all()) == []
    assert InvoiceRepresentation.objects.count() == 9
    assert list(representations.backfill()) == []
    assert_nothing_stale()


@pytest.mark.django_db
def test_deleting_a_draft_deletes_its_rows(client, admin_key):
    invoice = make_invoice()
    client.get(url(f"/api/invoices/{invoice.pk}.json", admin_key[1]))
    services.invoice_delete(invoice=invoice, actor=ACTOR)
    assert not InvoiceRepresentation.objects.exists()


# --- query counts -----------------------------------------------------------------------------
# REST framework's read path (what invoices.api.fast_reads hands on; its own counts are in
# tests/invoices/test_fast_reads.py).


@pytest.fixture
def rest_framework_reads(settings):
    settings.API_FAST_READS = False


def _count(call) -> int:
    with CaptureQueriesContext(connection) as queries:
        call()
    return len(queries)


@pytest.fixture
def stored_invoices(db, client, admin_key) -> list[Invoice]:
    """25 invoices, every one's representations stored (read once)."""
    made = [
        make_invoice(account=AccountFactory(), state=state, lines=[("1", "10"), ("2", "3.5")])
        for state in [State.PENDING, State.PAID, State.OPEN, State.CANCELLED, State.UNPAID] * 5
    ]
    representations.render_and_store(invoice.pk for invoice in made)
    client.get(url("/api/invoices.json", admin_key[1]))  # the key's last use, recorded once
    return made


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_3scale_detail_costs_what_a_404_does(
    rest_framework_reads, client, admin_key, stored_invoices, fmt, django_assert_num_queries
):
    invoice = stored_invoices[1]
    not_found = _count(lambda: client.get(url(f"/api/invoices/999999.{fmt}", admin_key[1])))
    with django_assert_num_queries(not_found):
        response = client.get(url(f"/api/invoices/{invoice.pk}.{fmt}", admin_key[1]))
    assert response.status_code == 200
    kind = Kind.THREESCALE_XML if fmt == "xml" else Kind.THREESCALE_JSON
    assert response.content == fresh_bytes(invoice.pk, kind)
    with django_assert_num_queries(not_found):  # the account is a condition of the same query
        response = client.get(
            url(f"/api/accounts/{invoice.account_id}/invoices/{invoice.pk}.{fmt}", admin_key[1])
        )
    assert response.content == fresh_bytes(invoice.pk, kind)


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_3scale_list_is_one_query_for_the_page_and_one_count(
    rest_framework_reads, client, admin_key, stored_invoices, fmt, django_assert_num_queries
):
    not_found = _count(lambda: client.get(url(f"/api/invoices/999999.{fmt}", admin_key[1])))
    with django_assert_num_queries(not_found + 1):  # the page and its total
        response = client.get(url(f"/api/invoices.{fmt}", admin_key[1], per_page=20))
    assert response.status_code == 200
    with django_assert_num_queries(not_found):  # a last page tells its own total
        client.get(url(f"/api/invoices.{fmt}", admin_key[1], per_page=20, page=2))


def test_v1_detail_and_list_cost_one_query_each_for_the_invoices(
    rest_framework_reads, admin_key, stored_invoices, django_assert_num_queries
):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {admin_key[1]}")
    api.get("/v1/invoices/999999")
    not_found = _count(lambda: api.get("/v1/invoices/999999"))
    invoice = stored_invoices[1]
    with django_assert_num_queries(not_found):
        response = api.get(f"/v1/invoices/{invoice.pk}")
    assert response.content == fresh_bytes(invoice.pk, Kind.V1_JSON)
    with django_assert_num_queries(not_found + 1):  # the total, then the page
        response = api.get("/v1/invoices?per_page=20&state=paid,pending")
    assert len(response.json()) == 10


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_a_page_without_stored_rows_costs_the_same_for_1_and_20(client, admin_key, fmt):
    for _ in range(25):
        make_invoice(account=AccountFactory(), state=State.PENDING)
    client.get(url("/api/invoices/999999.json", admin_key[1]))  # the key's last use
    counts = {}
    for per_page in (1, 20):
        InvoiceRepresentation.objects.all().delete()
        counts[per_page] = _count(
            lambda per_page=per_page: client.get(
                url(f"/api/invoices.{fmt}", admin_key[1], per_page=per_page)
            )
        )
    assert counts[1] == counts[20]
    assert InvoiceRepresentation.objects.count() == 3 * 20  # stored as they were read
