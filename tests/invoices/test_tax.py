"""The VAT treatment: decided from the parties, frozen at issue, broken down per category."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from invoices import services, tax
from invoices.models import Invoice
from tests.factories import ACTOR, AccountFactory, make_invoice
from tests.invoices.tax_cases import CASES, EXPECTED, issued_invoice, spanish_seller

RC = tax.MENTION_REVERSE_CHARGE
ART44 = tax.MENTION_OUTSIDE_EU_BUSINESS
ART59 = tax.MENTION_OUTSIDE_EU_CONSUMER
D = Decimal

# seller country, buyer country, buyer VAT id, business, exempt, reason, override
#   -> kind, category, rate, mention
TABLE = [
    ("domestic", ("ES", "ES", "ESA12345674", True, False, "", None), ("domestic", "S", D("21"), "")),
    ("domestic consumer", ("ES", "ES", "", False, False, "", None), ("domestic", "S", D("21"), "")),
    ("domestic override", ("ES", "ES", "", True, False, "", D("10")), ("domestic", "S", D("10"), "")),
    ("domestic, no buyer country", ("DE", "", "", True, False, "", None), ("domestic", "S", D("19"), "")),
    ("domestic, lower-case codes", ("fi", "fi", "", True, False, "", None), ("domestic", "S", D("25.5"), "")),
    ("reverse charge", ("ES", "DE", "DE136695976", True, False, "", None), ("reverse_charge", "AE", D("0"), RC)),
    ("reverse charge, override ignored", ("ES", "DE", "DE136695976", True, False, "", D("7")), ("reverse_charge", "AE", D("0"), RC)),
    ("reverse charge, Greek EL id", ("ES", "GR", "EL094259216", True, False, "", None), ("reverse_charge", "AE", D("0"), RC)),
    ("reverse charge, id without prefix", ("ES", "DE", "136695976", True, False, "", None), ("reverse_charge", "AE", D("0"), RC)),
    ("EU business without VAT id", ("ES", "DE", "", True, False, "", None), ("eu_consumer", "S", D("19"), "")),
    ("EU business with a broken VAT id", ("ES", "DE", "DE123", True, False, "", None), ("eu_consumer", "S", D("19"), "")),
    ("EU consumer", ("ES", "FR", "", False, False, "", None), ("eu_consumer", "S", D("20"), "")),
    ("EU consumer with a VAT id", ("ES", "FR", "FR40303265045", False, False, "", None), ("eu_consumer", "S", D("20"), "")),
    ("EU consumer override", ("ES", "FR", "", False, False, "", D("5.5")), ("eu_consumer", "S", D("5.5"), "")),
    ("outside the EU, business", ("ES", "US", "", True, False, "", None), ("outside_eu", "O", D("0"), ART44)),
    ("outside the EU, consumer", ("ES", "CH", "", False, False, "", None), ("outside_eu", "O", D("0"), ART59)),
    ("outside the EU, override ignored", ("ES", "US", "", True, False, "", D("7.25")), ("outside_eu", "O", D("0"), ART44)),
    ("exempt", ("ES", "ES", "", True, True, "Article 132 exemption", None), ("exempt", "E", D("0"), "Article 132 exemption")),
    ("exempt cross-border", ("ES", "DE", "DE136695976", True, True, "Article 132", None), ("exempt", "E", D("0"), "Article 132")),
    ("seller outside the EU", ("US", "DE", "DE136695976", True, False, "", D("7.25")), ("manual", "S", D("7.25"), "")),
    ("seller outside the EU, no rate", ("US", "US", "", True, False, "", None), ("manual", "O", None, "")),
    ("seller without a country", ("", "FR", "", False, False, "", D("20")), ("manual", "S", D("20"), "")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("given", "expected"), [row[1:] for row in TABLE], ids=[r[0] for r in TABLE]
)
def test_decide_treatment(given, expected):
    seller, buyer, vat_id, business, exempt, reason, override = given
    treatment = tax.decide_treatment(seller, "", buyer, vat_id, business, exempt, reason, override)
    assert (treatment.kind, treatment.category, treatment.rate, treatment.mention) == expected


def test_zero_rated_treatments_give_their_exemption_reason():
    # EN 16931 requires an exemption reason (BT-120) for AE, E and O.
    for buyer, vat_id, exempt in (
        ("DE", "DE136695976", False),
        ("US", "", False),
        ("ES", "", True),
    ):
        treatment = tax.decide_treatment("ES", "", buyer, vat_id, True, exempt, "Why", None)
        assert treatment.reason


def test_the_rate_table_covers_the_27_member_states():
    assert len(tax.EU_STANDARD_RATES) == 27
    assert all(D("15") <= rate <= D("27") for rate in tax.EU_STANDARD_RATES.values())
    assert tax.EU_RATES_CHECKED_ON <= dt.date.today()


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ([("S", D("21"), D("10.05"))], [("S", D("21"), D("10.05"), D("2.11"))]),
        # Rounded once per group, not per line: 3 x 0.02 at 21% is 0.01, not 0.
        ([("S", D("21"), D("0.02"))] * 3, [("S", D("21"), D("0.06"), D("0.01"))]),
        (
            [("S", D("21"), D("100")), ("S", D("10"), D("50")), ("E", D("0"), D("30"))],
            [("E", D("0"), D("30.00"), D("0.00")), ("S", D("10"), D("50.00"), D("5.00")),
             ("S", D("21"), D("100.00"), D("21.00"))],
        ),
        ([("O", None, D("5"))], [("O", D("0"), D("5.00"), D("0.00"))]),
    ],
)  # fmt: skip
def test_vat_breakdown_groups_by_category_and_rate(lines, expected):
    rows = tax.vat_breakdown(lines, "EUR")
    assert [(r.category, r.rate, r.taxable, r.vat) for r in rows] == expected


@pytest.mark.django_db
class TestFrozenAtIssue:
    @pytest.mark.parametrize("case", CASES)
    def test_each_case_is_frozen_on_the_invoice(self, case):
        # given a Spanish seller and the buyer of the case, when the invoice is issued
        invoice = issued_invoice(case)
        # then its treatment, category and rate are frozen
        kind, category, rate = EXPECTED[case]
        assert (invoice.tax_treatment, invoice.tax_category, invoice.vat_rate) == (
            kind,
            category,
            rate,
        )
        assert (invoice.seller_country_code, invoice.buyer_country_code) == (
            "ES",
            invoice.account.country_code,
        )
        # and its totals agree with the breakdown
        breakdown = invoice.vat_breakdown()
        assert [row.category for row in breakdown] == [category]
        assert invoice.cost == invoice.cost_without_vat + sum(row.vat for row in breakdown)
        assert sum(row.taxable for row in breakdown) == invoice.cost_without_vat

    def test_reverse_charge_has_its_mention_and_no_vat(self):
        invoice = issued_invoice("reverse_charge")
        assert invoice.tax_mention == tax.MENTION_REVERSE_CHARGE
        assert invoice.vat_amount == 0 and invoice.cost == invoice.cost_without_vat

    def test_exempt_carries_the_accounts_reason(self):
        invoice = issued_invoice("exempt")
        assert invoice.tax_exemption_reason == invoice.account.tax_exempt_reason

    def test_domestic_vat_is_charged_at_the_spanish_rate(self):
        invoice = issued_invoice("domestic")
        assert invoice.vat_amount == (invoice.cost_without_vat * D("0.21")).quantize(D("0.01"))

    def test_a_draft_keeps_the_accounts_rate_until_issue(self):
        spanish_seller()
        account = AccountFactory(country_code="DE", vat_code="DE136695976", vat_rate=D("19"))
        invoice = make_invoice(account=account)
        assert (invoice.vat_rate, invoice.tax_category) == (D("19"), "")
        invoice = services.invoice_issue(invoice=invoice, actor=ACTOR)
        assert (invoice.vat_rate, invoice.tax_category, invoice.vat_amount) == (D("0"), "AE", 0)

    def test_later_account_changes_do_not_touch_an_issued_invoice(self):
        invoice = issued_invoice("eu_consumer")
        account = invoice.account
        account.country_code, account.vat_rate = "DE", D("7")
        account.save()
        invoice.refresh_from_db()
        assert (invoice.vat_rate, invoice.buyer_country_code) == (D("20"), "FR")

    def test_a_seller_outside_the_eu_keeps_the_manual_rate(self):
        account = AccountFactory(country_code="US", vat_rate=D("7.25"))
        invoice = make_invoice(account=account, state=Invoice.State.PENDING)
        assert (invoice.tax_treatment, invoice.vat_rate, invoice.tax_category) == (
            "manual",
            D("7.25"),
            "S",
        )
        assert invoice.vat_amount == D("7.25")
