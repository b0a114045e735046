"""invoices_upsert_background_lines: the bulk write a billing run hands its lines to."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from accounts.models import Account
from billing.lib.money import MAX_AMOUNT, line_cost
from invoices import services
from invoices.models import Invoice, InvoiceEvent, LineItem
from invoices.services import LineSpec, invoices_upsert_background_lines
from tests.factories import AccountFactory

JAN = dt.date(2022, 1, 1)
NOW = dt.datetime(2022, 2, 1, 0, 15, tzinfo=dt.UTC)


def spec(source: str, unit_price: str, quantity: str = "1", **kwargs) -> LineSpec:
    return LineSpec(
        name=kwargs.pop("name", f"line {source}"),
        quantity=Decimal(quantity),
        unit_price=Decimal(unit_price),
        type=kwargs.pop("type", LineItem.Type.USAGE),
        source=source,
        **kwargs,
    )


def upsert(lines_by_account, **kwargs):
    return invoices_upsert_background_lines(
        period=JAN, lines_by_account=lines_by_account, actor="t", now=NOW, **kwargs
    )


def assert_identities(invoice: Invoice) -> None:
    lines = list(invoice.line_items.all())
    for line in lines:
        assert line.cost == line_cost(line.quantity, line.unit_price, invoice.currency)
    assert invoice.cost_without_vat == sum((line.cost for line in lines), Decimal(0))
    assert invoice.cost == invoice.cost_without_vat + invoice.vat_amount


@pytest.mark.django_db
class TestUpsertBackgroundLines:
    def test_creates_one_open_invoice_per_account_with_its_lines(self):
        # given two accounts in two currencies
        usd = AccountFactory(currency="USD", vat_rate=Decimal("21"), vat_code="ES1")
        jpy = AccountFactory(currency="JPY", vat_rate=None)
        # when their lines are handed over
        result = upsert(
            {usd.pk: [spec("a", "1.005", "2"), spec("b", "0.5")], jpy.pk: [spec("a", "120.6")]},
            reason="billing run 2022-01",
        )
        # then: one background invoice each, live terms, exact totals, ids by source
        invoice = Invoice.objects.get(account=usd)
        assert (invoice.creation_type, invoice.state, invoice.period) == ("background", "open", JAN)
        assert (invoice.currency, invoice.vat_rate, invoice.vat_code) == ("USD", Decimal(21), "ES1")
        assert invoice.cost_without_vat == Decimal("2.51")  # 2.01 + 0.50
        assert_identities(invoice)
        yen = Invoice.objects.get(account=jpy)
        assert yen.cost == Decimal("121")
        assert set(result.line_ids) == {(usd.pk, "a"), (usd.pk, "b"), (jpy.pk, "a")}
        assert LineItem.objects.get(pk=result.line_ids[(usd.pk, "a")]).cost == Decimal("2.01")
        assert (result.invoices_created, result.lines_created) == (2, 3)
        assert result.amount == {"USD": Decimal("2.51"), "JPY": Decimal("121")}
        events = list(invoice.events.values_list("kind", "actor", "reason", "to_state"))
        assert events == [
            ("created", "t", "billing run 2022-01", "open"),
            ("line_added", "t", "billing run 2022-01", ""),
        ]

    def test_the_same_lines_again_change_nothing(self):
        account = AccountFactory()
        first = upsert({account.pk: [spec("a", "3")]})
        events = InvoiceEvent.objects.count()
        again = upsert({account.pk: [spec("a", "3")]})
        assert again.line_ids == first.line_ids
        assert (again.invoices_created, again.invoices_updated, again.lines_updated) == (0, 0, 0)
        assert InvoiceEvent.objects.count() == events

    def test_a_changed_line_is_replaced_and_a_new_one_added(self):
        account = AccountFactory(vat_rate=Decimal("10"))
        first = upsert({account.pk: [spec("a", "3")]})
        invoice = Invoice.objects.get(account=account)
        services.line_item_add(invoice=invoice, name="Support", unit_price=Decimal("10"), actor="t")
        result = upsert({account.pk: [spec("a", "4", description="more"), spec("b", "1")]})
        assert result.line_ids[(account.pk, "a")] == first.line_ids[(account.pk, "a")]
        assert (result.invoices_updated, result.lines_created, result.lines_updated) == (1, 1, 1)
        assert result.amount == {"USD": Decimal("2.00")}
        invoice.refresh_from_db()
        assert invoice.cost_without_vat == Decimal("15.00")  # 4 + 1 + the manual 10
        assert invoice.vat_amount == Decimal("1.50")
        assert_identities(invoice)
        assert invoice.line_items.get(source="a").description == "more"
        added = invoice.events.filter(kind="line_added", created_at=NOW).order_by("id").last()
        assert added.data == {"lines_created": 1, "lines_updated": 1,
                              "cost_without_vat": "15.00", "added": "2.00"}  # fmt: skip

    def test_a_finalized_invoice_is_extended_an_issued_one_never(self):
        finalized, issued = AccountFactory(), AccountFactory()
        upsert({finalized.pk: [spec("a", "1")], issued.pk: [spec("a", "1")]})
        services.invoice_finalize(invoice=Invoice.objects.get(account=finalized), actor="t")
        services.invoice_issue(invoice=Invoice.objects.get(account=issued), actor="t")
        result = upsert({finalized.pk: [spec("a", "2")], issued.pk: [spec("a", "2")]})
        assert result.skipped_issued == {issued.pk}
        assert set(result.line_ids) == {(finalized.pk, "a")}
        assert Invoice.objects.get(account=finalized).cost_without_vat == Decimal("2.00")
        assert Invoice.objects.get(account=issued).cost_without_vat == Decimal("1.00")

    def test_a_cancelled_invoice_is_replaced_by_a_new_one(self):
        account = AccountFactory()
        upsert({account.pk: [spec("a", "1")]})
        services.invoice_cancel(invoice=Invoice.objects.get(account=account), actor="t")
        assert upsert({account.pk: [spec("a", "1")]}).invoices_created == 1
        assert Invoice.objects.filter(account=account, state="open").count() == 1

    def test_deleted_accounts_are_not_billable_suspended_ones_are(self):
        deleted = AccountFactory(state="deleted", deleted_at=NOW)
        suspended = AccountFactory(state=Account.State.SUSPENDED)
        result = upsert({deleted.pk: [spec("a", "1")], suspended.pk: [spec("a", "1")]})
        assert result.skipped_unbillable == {deleted.pk}
        assert not Invoice.objects.filter(account=deleted).exists()
        assert Invoice.objects.filter(account=suspended).exists()

    @pytest.mark.parametrize(
        "lines",
        [
            [spec("a", str(MAX_AMOUNT + 1))],
            [spec("a", "1", quantity="0")],
            [spec("a", "-1")],
            [spec("a", "1"), spec("a", "2")],
            [spec("", "1")],
            [spec("a", "1", name=" ")],
            [spec("a", "1", type="nonsense")],
            [spec("a", "0.123456789")],
            # Each line within its limit, the invoice's total beyond it.
            [spec("a", str(MAX_AMOUNT)), spec("b", str(MAX_AMOUNT))],
        ],
    )
    def test_lines_that_break_a_limit_refuse_the_account_and_write_nothing(self, lines):
        bad, good = AccountFactory(), AccountFactory()
        result = upsert({bad.pk: lines, good.pk: [spec("a", "1")]})
        assert set(result.rejected) == {bad.pk}
        assert not Invoice.objects.filter(account=bad).exists()
        assert Invoice.objects.get(account=good).cost_without_vat == Decimal("1.00")
