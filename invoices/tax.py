"""The VAT treatment of an invoice: which category, which rate, which legal mention.

`decide_treatment` is pure: it reads countries, VAT ids and the account's
choices, and answers with a `TaxTreatment`. `apply_treatment` freezes that
answer on an invoice when it is issued. The rules are those of Council
Directive 2006/112/EC for a seller of services established in the EU:

| buyer | treatment | EN 16931 category | rate |
|---|---|---|---|
| exempt account | exempt, with the account's reason | E | 0 |
| same country as the seller | domestic | S | seller country's standard rate |
| other EU country, business with a VAT id | reverse charge (Art. 196) | AE | 0 |
| other EU country, consumer (or no VAT id) | VAT of the buyer's country | S | buyer country's standard rate |
| outside the EU | outside the scope of EU VAT (Art. 44 / 59) | O | 0 |

A seller outside the EU (or with no country code) keeps the manual rate of the
account, as before. An account's own rate replaces the standard rate of the S
cases (a reduced rate, say). Consumer sales to other member states assume the
seller charges destination VAT (over the EU's distance-selling threshold, or
registered for the One-Stop Shop).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from django.db import models

from billing.lib.money import ZERO, quantize, vat_amount
from billing.lib.vat_ids import InvalidVatId, normalize_vat_id, vat_prefix

if TYPE_CHECKING:
    from accounts.models import Account, Seller
    from invoices.models import Invoice

# Standard VAT rates of the EU member states (ISO 3166-1 codes; Greece is GR
# here and EL in VAT ids), from the European Commission's "VAT rates applied in
# the Member States" table. Re-check it when a country changes its rate.
EU_STANDARD_RATES: dict[str, Decimal] = {
    "AT": Decimal("20"),
    "BE": Decimal("21"),
    "BG": Decimal("20"),
    "CY": Decimal("19"),
    "CZ": Decimal("21"),
    "DE": Decimal("19"),
    "DK": Decimal("25"),
    "EE": Decimal("24"),
    "ES": Decimal("21"),
    "FI": Decimal("25.5"),
    "FR": Decimal("20"),
    "GR": Decimal("24"),
    "HR": Decimal("25"),
    "HU": Decimal("27"),
    "IE": Decimal("23"),
    "IT": Decimal("22"),
    "LT": Decimal("21"),
    "LU": Decimal("17"),
    "LV": Decimal("21"),
    "MT": Decimal("18"),
    "NL": Decimal("21"),
    "PL": Decimal("23"),
    "PT": Decimal("23"),
    "RO": Decimal("21"),
    "SE": Decimal("25"),
    "SI": Decimal("22"),
    "SK": Decimal("23"),
}
EU_RATES_CHECKED_ON = dt.date(2025, 8, 1)
EU_MEMBER_STATES = frozenset(EU_STANDARD_RATES)

MENTION_REVERSE_CHARGE = (
    "Reverse charge: VAT to be accounted for by the recipient, Article 196 Directive 2006/112/EC"
)
MENTION_OUTSIDE_EU_BUSINESS = (
    "Not subject to EU VAT: place of supply outside the EU (Article 44 Directive 2006/112/EC)"
)
MENTION_OUTSIDE_EU_CONSUMER = (
    "Not subject to EU VAT: place of supply outside the EU (Article 59 Directive 2006/112/EC)"
)
MENTION_NOT_SUBJECT = "Not subject to VAT"


class Kind(models.TextChoices):
    DOMESTIC = "domestic", "Domestic"
    REVERSE_CHARGE = "reverse_charge", "EU reverse charge"
    EU_CONSUMER = "eu_consumer", "EU consumer (destination VAT)"
    OUTSIDE_EU = "outside_eu", "Outside the EU"
    EXEMPT = "exempt", "Exempt"
    MANUAL = "manual", "Manual rate (seller outside the EU)"


class Category(models.TextChoices):
    """EN 16931 VAT category codes (UNTDID 5305) an invoice or one of its lines may carry."""

    STANDARD = "S", "S: standard rate"
    ZERO_RATED = "Z", "Z: zero rated"
    REVERSE_CHARGE = "AE", "AE: reverse charge"
    EXEMPT = "E", "E: exempt"
    INTRA_COMMUNITY = "K", "K: intra-Community supply"
    OUTSIDE_SCOPE = "O", "O: outside the scope of VAT"
    EXPORT = "G", "G: export outside the EU"


# What a line of each non-standard category prints (the legal mention) and gives
# as its exemption reason (EN 16931 BT-120) when the invoice's own treatment is
# another one; a category equal to the invoice's takes the invoice's frozen
# mention and reason. Z and S take no exemption reason (BR-Z-10, BR-S-10).
MENTION_ZERO_RATED = "Zero-rated supply: VAT at 0%"
MENTION_EXEMPT = "Exempt from VAT"
MENTION_INTRA_COMMUNITY = (
    "Intra-Community supply exempt from VAT, Article 138 Directive 2006/112/EC"
)
MENTION_EXPORT = "Export outside the EU exempt from VAT, Article 146 Directive 2006/112/EC"
CATEGORY_MENTIONS: dict[str, tuple[str, str]] = {
    # category: (printed mention, exemption reason)
    "Z": (MENTION_ZERO_RATED, ""),
    "E": (MENTION_EXEMPT, MENTION_EXEMPT),
    "AE": (MENTION_REVERSE_CHARGE, "Reverse charge"),
    "K": (MENTION_INTRA_COMMUNITY, "Intra-Community supply"),
    "G": (MENTION_EXPORT, "Export outside the EU"),
    "O": (MENTION_NOT_SUBJECT, MENTION_NOT_SUBJECT),
}
# Categories whose rate is always 0 (BR-Z-5, BR-E-5, BR-AE-5, BR-IC-5, BR-G-5; an
# O line has no rate at all, BR-O-5, and is stored with 0).
ZERO_RATE_CATEGORIES = frozenset({"Z", "E", "AE", "K", "G", "O"})
# Categories that name the buyer's VAT id on the document (BR-AE-2, BR-IC-2).
BUYER_VAT_ID_CATEGORIES = frozenset({"AE", "K"})
VAT_RATE_DECIMAL_PLACES = 2
MAX_VAT_RATE = Decimal(100)


@dataclass(frozen=True)
class TaxTreatment:
    """How one invoice is taxed: `reason` is the exemption reason (EN 16931 BT-120)."""

    kind: str
    category: str
    rate: Decimal | None
    mention: str = ""
    reason: str = ""


@dataclass(frozen=True)
class VatBreakdown:
    """One row of an invoice's VAT breakdown: the lines of one category and rate."""

    category: str
    rate: Decimal
    taxable: Decimal
    vat: Decimal


def standard_rate(country_code: str) -> Decimal | None:
    return EU_STANDARD_RATES.get(country_code.upper())


def is_eu(country_code: str) -> bool:
    return country_code.upper() in EU_MEMBER_STATES


def _has_eu_vat_id(vat_id: str, country_code: str) -> bool:
    """A VAT id that passes its member state's check (the reverse charge needs one)."""
    try:
        number = normalize_vat_id(vat_id or "", country_code)
    except InvalidVatId:
        return False
    return bool(number) and (number[:2] in {vat_prefix(code) for code in EU_MEMBER_STATES})


def decide_treatment(
    seller_country: str,
    seller_vat_id: str,
    buyer_country: str,
    buyer_vat_id: str,
    buyer_is_business: bool,
    buyer_exempt: bool,
    exempt_reason: str,
    account_rate_override: Decimal | None,
) -> TaxTreatment:
    """The treatment of a sale of services from `seller_country` to `buyer_country`."""
    seller_country = (seller_country or "").upper()
    buyer_country = (buyer_country or "").upper()
    if not is_eu(seller_country):
        rate = account_rate_override
        if rate:
            return TaxTreatment(Kind.MANUAL, Category.STANDARD, rate)
        return TaxTreatment(Kind.MANUAL, Category.OUTSIDE_SCOPE, rate, reason=MENTION_NOT_SUBJECT)
    if buyer_exempt:
        reason = exempt_reason.strip() or "Exempt from VAT"
        return TaxTreatment(Kind.EXEMPT, Category.EXEMPT, ZERO, mention=reason, reason=reason)
    # No buyer country: nothing says the supply leaves the seller's country.
    if not buyer_country or buyer_country == seller_country:
        rate = account_rate_override
        if rate is None:
            rate = standard_rate(seller_country)
        return TaxTreatment(Kind.DOMESTIC, Category.STANDARD, rate)
    if not is_eu(buyer_country):
        mention = MENTION_OUTSIDE_EU_BUSINESS if buyer_is_business else MENTION_OUTSIDE_EU_CONSUMER
        return TaxTreatment(
            Kind.OUTSIDE_EU, Category.OUTSIDE_SCOPE, ZERO, mention=mention, reason=mention
        )
    if buyer_is_business and _has_eu_vat_id(buyer_vat_id, buyer_country):
        return TaxTreatment(
            Kind.REVERSE_CHARGE,
            Category.REVERSE_CHARGE,
            ZERO,
            mention=MENTION_REVERSE_CHARGE,
            reason="Reverse charge",
        )
    rate = account_rate_override
    if rate is None:
        rate = standard_rate(buyer_country)
    return TaxTreatment(Kind.EU_CONSUMER, Category.STANDARD, rate)


def account_treatment(account: Account, seller: Seller) -> TaxTreatment:
    return decide_treatment(
        seller.country_code,
        seller.vat_id,
        account.country_code,
        account.vat_code,
        account.is_business,
        account.tax_exempt,
        account.tax_exempt_reason,
        account.vat_rate,
    )


def apply_treatment(invoice: Invoice, account: Account, seller: Seller) -> TaxTreatment:
    """Freeze the treatment on an invoice being issued (its totals are computed after)."""
    treatment = account_treatment(account, seller)
    invoice.vat_rate = treatment.rate
    invoice.tax_treatment = treatment.kind
    invoice.tax_category = treatment.category
    invoice.tax_mention = treatment.mention
    invoice.tax_exemption_reason = treatment.reason
    invoice.seller_country_code = seller.country_code
    invoice.buyer_country_code = account.country_code
    return treatment


def category_of(vat_rate: Decimal | None) -> str:
    """The category of an invoice that has none frozen (a draft, or issued before)."""
    return Category.STANDARD if vat_rate else Category.OUTSIDE_SCOPE


def vat_breakdown(
    lines: Iterable[tuple[str, Decimal | None, Decimal]], currency: str
) -> list[VatBreakdown]:
    """Group (category, rate, line cost) by category and rate; each group's VAT rounded once.

    The invoice identity follows: total = net + sum of the groups' VAT.
    """
    groups: dict[tuple[str, Decimal], Decimal] = {}
    for category, rate, cost in lines:
        key = (category, rate or ZERO)
        groups[key] = groups.get(key, ZERO) + cost
    rows = []
    for (category, rate), total in sorted(groups.items()):
        taxable = quantize(total, currency)
        rows.append(VatBreakdown(category, rate, taxable, vat_amount(taxable, rate, currency)))
    return rows


# --- per-line categories ----------------------------------------------------------


class LineTaxError(ValueError):
    """A line's VAT category or rate that can't be: `field` names it."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def line_tax_validate(
    category: str | None, rate: Decimal | None
) -> tuple[str | None, Decimal | None]:
    """The (category, rate) a line is given, checked on its own: (None, None) means
    "the invoice's treatment"; a zero-rated category without a rate gets 0."""
    if category is None or category == "":
        if rate is not None:
            raise LineTaxError("give vat_category with vat_rate", "vat_rate")
        return None, None
    if category not in Category.values:
        raise LineTaxError(f"must be one of {', '.join(Category.values)}", "vat_category")
    if rate is not None:
        if not isinstance(rate, Decimal) or not rate.is_finite():
            raise LineTaxError("must be a number", "vat_rate")
        if rate < 0 or rate > MAX_VAT_RATE:
            raise LineTaxError(f"must be between 0 and {MAX_VAT_RATE}", "vat_rate")
        if rate != rate.quantize(Decimal(1).scaleb(-VAT_RATE_DECIMAL_PLACES)):
            raise LineTaxError(
                f"must have at most {VAT_RATE_DECIMAL_PLACES} decimal places", "vat_rate"
            )
    if category in ZERO_RATE_CATEGORIES:
        if rate:
            raise LineTaxError(f"must be 0 (or omitted) for category {category}", "vat_rate")
        return category, ZERO
    if rate is None or rate <= 0:
        raise LineTaxError("a standard-rated (S) line needs a rate above 0", "vat_rate")
    return category, rate


def line_category_problem(
    category: str,
    *,
    seller_vat_id: str,
    seller_country: str,
    buyer_vat_id: str,
    buyer_country: str,
) -> str:
    """Why the parties can't carry a line of `category` (EN 16931's BR-x-2 rules), or ""."""
    if category == Category.OUTSIDE_SCOPE:
        return ""
    if not seller_vat_id:
        return f"category {category} needs the seller's VAT id (seller profile)"
    if category in BUYER_VAT_ID_CATEGORIES and not buyer_vat_id:
        return f"category {category} needs the customer's VAT id"
    if category == Category.INTRA_COMMUNITY and not (
        is_eu(seller_country)
        and is_eu(buyer_country)
        and seller_country.upper() != buyer_country.upper()
    ):
        return "category K is a supply from one EU member state to another"
    return ""


def mixing_problem(categories: Iterable[str]) -> str:
    """Why these categories can't share one invoice, or "": not subject to VAT (O)
    excludes every other category (BR-O-11)."""
    present = set(categories)
    if Category.OUTSIDE_SCOPE in present and len(present) > 1:
        others = ", ".join(sorted(present - {Category.OUTSIDE_SCOPE}))
        return f"category O (not subject to VAT) can't share an invoice with {others}"
    return ""


def row_mention(
    category: str, invoice_category: str, invoice_mention: str, invoice_reason: str
) -> tuple[str, str]:
    """(printed mention, exemption reason) of a breakdown row: the invoice's frozen ones
    for its own category, the table's for a line that carries another one."""
    if category == Category.STANDARD:
        return "", ""
    if category == invoice_category and (invoice_mention or invoice_reason):
        return invoice_mention or invoice_reason, invoice_reason
    return CATEGORY_MENTIONS.get(category, ("", ""))
