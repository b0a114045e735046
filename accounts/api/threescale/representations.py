"""The account representation of the 3scale Account Management API (/admin/api).

JSON follows the invoice conventions (nulls and blanks omitted except
`vat_rate`, times in UTC with `Z`, `links`); XML writes every field, nil as
`<tag/>`. The card token itself never leaves the server.
"""

from __future__ import annotations

from typing import Any

from accounts.models import Account
from billing.api.threescale.representations import Links, Pagination
from billing.api.threescale.values import iso_time, money, ruby_decimal
from billing.api.threescale.xml import Element, container

# (3scale's billing_address key, our field)
ADDRESS_FIELDS: tuple[tuple[str, str], ...] = (
    ("address1", "address_line1"),
    ("address2", "address_line2"),
    ("city", "city"),
    ("state", "address_state"),
    ("zip", "zip"),
    ("country", "country"),
    ("phone", "phone"),
)


def _credit_card_stored(account: Account) -> bool:
    return bool(account.card_token)


def account_json(account: Account, links: Links) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": account.pk,
        "created_at": iso_time(account.created_at),
        "updated_at": iso_time(account.updated_at),
        "state": account.state,
        "org_name": account.org_name,
    }
    if account.billing_email:
        data["billing_email"] = account.billing_email
    if account.vat_code:
        data["vat_code"] = account.vat_code
    data["vat_rate"] = None if account.vat_rate is None else money(account.vat_rate)
    data["currency"] = account.currency
    data["payment_terms_days"] = account.effective_payment_terms_days
    data["payment_method"] = account.payment_method
    data["credit_card_stored"] = _credit_card_stored(account)
    if account.card_last4:
        data["credit_card_partial_number"] = account.card_last4
    address = {"company": account.org_name}
    for key, field in ADDRESS_FIELDS:
        value = getattr(account, field)
        if value:
            address[key] = value
    data["billing_address"] = address
    # Tax fields beyond 3scale's, only when they say something: a 3scale client
    # sees exactly the keys it knows for an account that uses none of them.
    data.update(_tax_fields(account))
    data["links"] = [
        links.rel("self", f"/admin/api/accounts/{account.pk}"),
        links.rel("invoices", f"/api/accounts/{account.pk}/invoices"),
    ]
    return data


def _tax_fields(account: Account) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if account.country_code:
        fields["country_code"] = account.country_code
    if not account.is_business:
        fields["is_business"] = False
    if account.tax_exempt:
        fields["tax_exempt"] = True
        fields["tax_exempt_reason"] = account.tax_exempt_reason
    return fields


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def account_xml(account: Account) -> Element:
    address = [Element("company", account.org_name)] + [
        Element(key, _text(getattr(account, field))) for key, field in ADDRESS_FIELDS
    ]
    return Element(
        "account",
        children=[
            Element("id", str(account.pk)),
            Element("created_at", iso_time(account.created_at)),
            Element("updated_at", iso_time(account.updated_at)),
            Element("state", account.state),
            Element("org_name", account.org_name),
            Element("billing_email", _text(account.billing_email)),
            Element("vat_code", _text(account.vat_code)),
            Element(
                "vat_rate", None if account.vat_rate is None else ruby_decimal(account.vat_rate)
            ),
            Element("currency", account.currency),
            Element("payment_terms_days", str(account.effective_payment_terms_days)),
            Element("payment_method", account.payment_method),
            Element("credit_card_stored", "true" if _credit_card_stored(account) else "false"),
            Element("credit_card_partial_number", _text(account.card_last4)),
            Element("billing_address", children=address),
            *(
                Element(key, str(value).lower() if isinstance(value, bool) else value)
                for key, value in _tax_fields(account).items()
            ),
        ],
    )


def accounts_json(items: list[dict[str, Any]], pagination: Pagination) -> dict[str, Any]:
    data: dict[str, Any] = {"accounts": [{"account": item} for item in items]}
    if pagination.has_many_pages:
        data["metadata"] = pagination.json()
    return data


def accounts_xml(elements: list[Element], pagination: Pagination) -> Element:
    attributes = pagination.xml_attributes() if pagination.has_many_pages else {}
    return container("accounts", elements, empty_as_pair=True, **attributes)
