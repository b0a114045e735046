"""Lines with their own VAT category and rate: validation, freezing at issue, the
breakdown and its identities on invoices and credit notes, /v1, the billing run."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from invoices import services, tax
from invoices.exceptions import InvoiceValidationError
from invoices.models import CreditNote, Invoice, LineItem
from tests.factories import ACTOR, make_api_key
from tests.invoices.tax_cases import buyer, spanish_seller

pytestmark = pytest.mark.django_db
S = Invoice.State
D = Decimal


def mixed_invoice(case: str = "domestic", *, issue: bool = True) -> Invoice:
    """The Spanish seller bills a plan at 21%, a book at the super-reduced 4% and an
    exempt training course, to the buyer of `case`."""
    spanish_seller()
    lines = [
        services.NewLine(name="Plan Pro", unit_price=D("490.00")),
        services.NewLine(
            name="Handbook", quantity=D("3"), unit_price=D("33.33"), vat_category="S",
            vat_rate=D("4"),
        ),
        services.NewLine(
            name="Training day", unit_price=D("250.00"), vat_category="E"
        ),
        services.NewLine(name="Usage", quantity=D("1250"), unit_price=D("0.0123")),
    ]  # fmt: skip
    invoice = services.invoice_create_with_lines(
        account=buyer(case), lines=lines, issue=issue, actor=ACTOR
    )
    invoice.refresh_from_db()
    return invoice


def assert_identities(document) -> None:
    """net + sum of the breakdown's VAT = total; each group's VAT rounded once."""
    rows = document.vat_breakdown()
    assert sum(row.vat for row in rows) == document.vat_amount
    assert sum(row.taxable for row in rows) == document.cost_without_vat
    assert document.cost == document.cost_without_vat + document.vat_amount


class TestValidation:
    @pytest.mark.parametrize(
        ("category", "rate", "field"),
        [
            ("X", None, "vat_category"),
            ("s", D("21"), "vat_category"),
            ("S", None, "vat_rate"),
            ("S", D("0"), "vat_rate"),
            ("S", D("100.01"), "vat_rate"),
            ("S", D("-1"), "vat_rate"),
            ("S", D("21.005"), "vat_rate"),
            ("AE", D("21"), "vat_rate"),
            ("E", D("5"), "vat_rate"),
            (None, D("21"), "vat_rate"),
            ("S", D("NaN"), "vat_rate"),
        ],
    )
    def test_refused_naming_the_field(self, category, rate, field):
        with pytest.raises(tax.LineTaxError) as caught:
            tax.line_tax_validate(category, rate)
        assert caught.value.field == field

    @pytest.mark.parametrize(
        ("category", "rate", "expected"),
        [
            (None, None, (None, None)),
            ("", None, (None, None)),
            ("S", D("5.5"), ("S", D("5.5"))),
            ("Z", None, ("Z", D(0))),
            ("AE", D("0"), ("AE", D(0))),
            ("O", None, ("O", D(0))),
        ],
    )
    def test_accepted(self, category, rate, expected):
        assert tax.line_tax_validate(category, rate) == expected

    def test_reverse_charge_line_needs_the_buyers_vat_id(self):
        spanish_seller()
        invoice = services.invoice_create(account=buyer("eu_consumer"), actor=ACTOR)
        with pytest.raises(InvoiceValidationError) as caught:
            services.line_item_add(
                invoice=invoice, name="x", unit_price=D("1"), vat_category="AE", actor=ACTOR
            )
        assert caught.value.field == "vat_category"
        assert "VAT id" in caught.value.message
        assert not LineItem.objects.filter(invoice=invoice).exists()

    def test_intra_community_line_needs_two_member_states(self):
        spanish_seller()
        invoice = services.invoice_create(account=buyer("domestic"), actor=ACTOR)
        with pytest.raises(InvoiceValidationError, match="member state"):
            services.line_item_add(
                invoice=invoice, name="x", unit_price=D("1"), vat_category="K", actor=ACTOR
            )

    def test_not_subject_lines_do_not_mix_with_others(self):
        spanish_seller()
        invoice = services.invoice_create(account=buyer("domestic"), actor=ACTOR)
        services.line_item_add(invoice=invoice, name="Plan", unit_price=D("10"), actor=ACTOR)
        with pytest.raises(InvoiceValidationError, match="category O") as caught:
            services.line_item_add(
                invoice=invoice, name="x", unit_price=D("1"), vat_category="O", actor=ACTOR
            )
        assert caught.value.field == "vat_category"

    def test_issue_checks_again_against_the_frozen_treatment(self):
        # Added while the customer was Spanish; issued after it moved to the US,
        # where the treatment is O, which no other category may join.
        spanish_seller()
        account = buyer("domestic")
        invoice = services.invoice_create(account=account, actor=ACTOR)
        services.line_item_add(invoice=invoice, name="Plan", unit_price=D("10"), actor=ACTOR)
        services.line_item_add(
            invoice=invoice, name="Book", unit_price=D("10"), vat_category="S",
            vat_rate=D("4"), actor=ACTOR,
        )  # fmt: skip
        account.country_code = "US"
        account.save()
        with pytest.raises(InvoiceValidationError, match="category O") as caught:
            services.invoice_issue(invoice=invoice, actor=ACTOR)
        assert caught.value.field == "line_items"
        invoice.refresh_from_db()
        assert invoice.state == S.OPEN and invoice.friendly_id is None
        assert LineItem.objects.filter(invoice=invoice, vat_category__isnull=True).count() == 1


class TestBreakdown:
    def test_issue_freezes_every_line_and_rounds_each_group_once(self):
        invoice = mixed_invoice()
        assert invoice.state == S.PENDING
        taxes = list(invoice.line_items.values_list("name", "vat_category", "vat_rate"))
        assert taxes == [
            ("Plan Pro", "S", D("21")),
            ("Handbook", "S", D("4")),
            ("Training day", "E", D("0")),
            ("Usage", "S", D("21")),
        ]
        rows = invoice.vat_breakdown()
        assert [(row.category, row.rate, row.taxable, row.vat) for row in rows] == [
            ("E", D("0"), D("250.00"), D("0.00")),
            ("S", D("4"), D("99.99"), D("4.00")),
            ("S", D("21"), D("505.38"), D("106.13")),  # 490 + 15.375 -> 15.38
        ]
        assert invoice.cost_without_vat == D("855.37")
        assert invoice.vat_amount == D("110.13")
        assert_identities(invoice)

    def test_a_draft_shows_its_breakdown_with_the_live_rate(self):
        invoice = mixed_invoice(issue=False)
        assert invoice.state == S.OPEN
        # Until issue the lines without a category follow the account's manual rate (none).
        assert {row.category for row in invoice.vat_breakdown()} == {"O", "S", "E"}
        assert_identities(invoice)

    def test_later_changes_to_the_customer_leave_the_issued_lines_alone(self):
        invoice = mixed_invoice()
        account = invoice.account
        account.vat_rate = D("10")
        account.save()
        invoice.refresh_from_db()
        assert [row.rate for row in invoice.vat_breakdown()] == [D("0"), D("4"), D("21")]


class TestCreditNotes:
    def test_by_lines_each_line_at_its_own_rate(self):
        invoice = mixed_invoice()
        plan, book, course, _usage = invoice.line_items.all()
        note = services.credit_note_create(
            invoice=invoice,
            reason="Wrong items",
            lines=[
                services.CreditLine(plan.pk, D("1")),
                services.CreditLine(book.pk, D("1")),
                services.CreditLine(course.pk, D("1")),
            ],
            actor=ACTOR,
        )
        rows = note.vat_breakdown()
        assert [(row.category, row.rate, row.taxable, row.vat) for row in rows] == [
            ("E", D("0"), D("250.00"), D("0.00")),
            ("S", D("4"), D("33.33"), D("1.33")),
            ("S", D("21"), D("490.00"), D("102.90")),
        ]
        assert list(note.lines.values_list("vat_category", "vat_rate")) == [
            ("S", D("21")),
            ("S", D("4")),
            ("E", D("0")),
        ]
        assert_identities(note)

    def test_notes_crediting_everything_add_up_to_the_invoice_group_by_group(self):
        invoice = mixed_invoice()
        lines = list(invoice.line_items.all())
        first = services.credit_note_create(
            invoice=invoice,
            reason="Part",
            lines=[services.CreditLine(line.pk, D("1")) for line in lines[1:2]],
            actor=ACTOR,
        )
        invoice.refresh_from_db()
        rest = services.credit_note_create(
            invoice=invoice,
            reason="The rest",
            amount=invoice.cost_without_vat - first.cost_without_vat,
            actor=ACTOR,
        )
        invoice.refresh_from_db()
        assert_identities(rest)
        assert first.cost + rest.cost == invoice.cost
        assert invoice.amount_credited == invoice.cost and invoice.amount_due() == 0
        totals: dict = {}
        for note in (first, rest):
            for row in note.vat_breakdown():
                net, vat = totals.get((row.category, row.rate), (D(0), D(0)))
                totals[(row.category, row.rate)] = (net + row.taxable, vat + row.vat)
        assert totals == {
            (row.category, row.rate): (row.taxable, row.vat) for row in invoice.vat_breakdown()
        }
        assert rest.lines.count() == 3  # one per category and rate

    def test_a_partial_amount_on_a_mixed_invoice_is_refused(self):
        invoice = mixed_invoice()
        with pytest.raises(InvoiceValidationError, match="mixes VAT rates") as caught:
            services.credit_note_create(invoice=invoice, reason="x", amount=D("10.00"), actor=ACTOR)
        assert caught.value.field == "amount"
        assert not CreditNote.objects.exists()

    def test_a_single_rate_invoice_is_still_credited_by_amount(self):
        spanish_seller()
        invoice = services.invoice_create_with_lines(
            account=buyer("domestic"),
            lines=[services.NewLine(name="Plan", unit_price=D("100.00"))],
            issue=True,
            actor=ACTOR,
        )
        note = services.credit_note_create(
            invoice=invoice, reason="x", amount=D("10.00"), actor=ACTOR
        )
        assert (note.cost_without_vat, note.vat_amount, note.cost) == (
            D("10.00"), D("2.10"), D("12.10")
        )  # fmt: skip
        assert note.lines.get().vat_category == "S"


def test_the_billing_run_keeps_a_clerks_line_category():
    """The bulk writer's lines have none; its totals still count the clerk's line at 4%."""
    spanish_seller()
    account = buyer("domestic")
    account.vat_rate = D("21")
    account.save()
    period = dt.date.today().replace(day=1)
    services.invoices_upsert_background_lines(
        period=period,
        lines_by_account={
            account.pk: [services.LineSpec("Usage", D("1"), D("100"), "usage", "usage:a")]
        },
        actor=ACTOR,
    )
    invoice = Invoice.objects.get(account=account)
    services.line_item_add(
        invoice=invoice, name="Book", unit_price=D("50"), vat_category="S", vat_rate=D("4"),
        actor=ACTOR,
    )  # fmt: skip
    services.invoices_upsert_background_lines(
        period=period,
        lines_by_account={
            account.pk: [services.LineSpec("Usage", D("2"), D("100"), "usage", "usage:a")]
        },
        actor=ACTOR,
    )
    invoice.refresh_from_db()
    assert invoice.line_items.get(source="usage:a").vat_category is None
    assert (invoice.cost_without_vat, invoice.vat_amount) == (D("250.00"), D("44.00"))
    assert_identities(invoice)


class TestApi:
    @pytest.fixture
    def client(self):
        spanish_seller()
        account = buyer("reverse_charge")
        _key, secret = make_api_key(scope="write", account=account)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        client.account = account  # type: ignore[attr-defined]
        return client

    def post(self, client, lines):
        body = {"customer_id": client.account.pk, "draft": True, "line_items": lines}
        return client.post("/v1/invoices", json.dumps(body), content_type="application/json")

    def test_lines_carry_their_category_and_rate(self, client):
        response = self.post(
            client,
            [
                {"description": "Plan", "price": 100},
                {"description": "Book", "price": 20, "vat_category": "S", "vat_rate": 4},
            ],
        )
        assert response.status_code == 201, response.content
        lines = response.json()["line_items"]
        assert [(line["vat_category"], line["vat_rate"]) for line in lines] == [
            (None, None),
            ("S", 4),
        ]
        invoice_id = response.json()["id"]
        issued = client.post(f"/v1/invoices/{invoice_id}/issue")
        assert issued.status_code == 200, issued.content
        body = issued.json()
        assert [(line["vat_category"], line["vat_rate"]) for line in body["line_items"]] == [
            ("AE", 0),
            ("S", 4),
        ]
        assert (body["subtotal"], body["tax"], body["total"]) == (120, 0.8, 120.8)

    @pytest.mark.parametrize(
        ("line", "field"),
        [
            ({"vat_category": "XX"}, "line_items[0].vat_category"),
            ({"vat_category": ["S"]}, "line_items[0].vat_category"),
            ({"vat_category": "S", "vat_rate": 101}, "line_items[0].vat_rate"),
            ({"vat_category": "S", "vat_rate": "4.001"}, "line_items[0].vat_rate"),
            ({"vat_category": "S", "vat_rate": "1e400"}, "line_items[0].vat_rate"),
            ({"vat_category": "S"}, "line_items[0].vat_rate"),
            ({"vat_category": "E", "vat_rate": 10}, "line_items[0].vat_rate"),
            ({"vat_rate": 10}, "line_items[0].vat_rate"),
        ],
    )
    def test_bad_categories_are_400_naming_the_field(self, client, line, field):
        before = (Invoice.objects.count(), LineItem.objects.count())
        response = self.post(client, [{"description": "x", "price": 1, **line}])
        assert response.status_code == 400, response.content
        assert field in response.json()["error"]["details"], response.json()
        assert (Invoice.objects.count(), LineItem.objects.count()) == before

    def test_a_category_the_rules_forbid_is_400_naming_the_line(self, client):
        before = (Invoice.objects.count(), LineItem.objects.count())
        response = self.post(
            client,
            [
                {"description": "Plan", "price": 1},
                {"description": "x", "price": 1, "vat_category": "O"},
            ],
        )
        assert response.status_code == 400, response.content
        assert "line_items[1].vat_category" in response.json()["error"]["details"]
        assert (Invoice.objects.count(), LineItem.objects.count()) == before

    def test_put_replaces_lines_with_their_categories(self, client):
        created = self.post(client, [{"description": "Plan", "price": 100}]).json()
        response = client.patch(
            f"/v1/invoices/{created['id']}",
            json.dumps(
                {"line_items": [{"description": "Course", "price": 50, "vat_category": "E"}]}
            ),
            content_type="application/json",
        )
        assert response.status_code == 200, response.content
        [line] = response.json()["line_items"]
        assert (line["vat_category"], line["vat_rate"]) == ("E", 0)
