"""The 3scale representations of invoices, line items and payment transactions.

Each resource has a JSON form (a dict in 3scale's key order, nulls omitted
except `vat_rate`) and an XML form (an Element in the order of 3scale's
Builder code). They differ on purpose, as in 3scale: JSON carries times,
`period` as begin/end and `links`; XML carries the parties, the embedded line
items, `payment_transactions_count` and `period` as from/to.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any, cast

from accounts.models import Seller
from billing.api.threescale.representations import Links, Pagination
from billing.api.threescale.values import (
    dumps,
    iso_date,
    iso_time,
    money,
    plain_decimal,
    quantity,
    ruby_decimal,
    ruby_time,
)
from billing.api.threescale.xml import Element, container
from billing.lib.json_codec import JsonNumber
from invoices.gateways import gateway_response_public
from invoices.models import Invoice, LineItem, PaymentTransaction

# Our line types and 3scale's: the STI class name, and the JSON wrapper it implies.
LINE_TYPES: dict[str, tuple[str, str]] = {
    LineItem.Type.MANUAL: ("", "line_item"),
    LineItem.Type.PLAN_FEE: ("LineItem::PlanCost", "plan_cost"),
    LineItem.Type.USAGE: ("LineItem::VariableCost", "variable_cost"),
}
TYPES_BY_3SCALE_NAME: dict[str, str] = {name: ours for ours, (name, _) in LINE_TYPES.items()}


def _text(value: Any) -> str | None:
    """Blank strings print as nil (`<state/>`), as 3scale's optional fields do."""
    if value is None or value == "":
        return None
    return str(value)


def _date_text(value) -> str:
    # 3scale writes dates through to_s, so a missing date is `<paid_at></paid_at>`.
    return "" if value is None else iso_date(value)


# --- invoices ------------------------------------------------------------------


def invoice_json(invoice: Invoice, links: Links) -> dict[str, Any]:
    data: dict[str, Any] = {"id": invoice.pk}
    if invoice.friendly_id:
        data["friendly_id"] = invoice.friendly_id
    data["created_at"] = iso_time(invoice.created_at)
    data["updated_at"] = iso_time(invoice.updated_at)
    data["state"] = invoice.state
    if invoice.paid_at is not None:
        data["paid_at"] = iso_time(invoice.paid_at)
    if invoice.due_on is not None:
        data["due_on"] = iso_date(invoice.due_on)
    if invoice.issued_on is not None:
        data["issued_on"] = iso_date(invoice.issued_on)
    data["currency"] = invoice.currency
    data["cost"] = money(invoice.cost)
    data["vat_rate"] = None if invoice.vat_rate is None else money(invoice.vat_rate)
    data["vat_amount"] = money(invoice.vat_amount)
    data["cost_without_vat"] = money(invoice.cost_without_vat)
    data["period"] = {"begin": iso_date(invoice.period), "end": iso_date(invoice.period_end)}
    data["creation_type"] = invoice.creation_type
    data["links"] = [
        links.rel("account", f"/admin/api/accounts/{invoice.account_id}"),
        links.rel("self", f"/api/invoices/{invoice.pk}"),
        links.rel("payment_transactions", f"/api/invoices/{invoice.pk}/payment_transactions"),
        links.rel("line_items", f"/api/invoices/{invoice.pk}/line_items"),
    ]
    return data


# A stored invoice fragment (invoices.representations) is rendered once for every
# host the API answers on: each link's base is this placeholder, written raw
# into the JSON (a control character the writer always escapes inside strings,
# so it stands for nothing else), and replaced by the request's base on the way out.
LINK_BASE_PLACEHOLDER = "\x01"


class StoredLinks(Links):
    """Links whose base is the placeholder, for a fragment stored for every host."""

    def __init__(self) -> None:  # no request: the base comes per request
        self.base = LINK_BASE_PLACEHOLDER

    def rel(self, rel: str, path: str) -> dict[str, Any]:
        # Written verbatim (paths hold only ASCII letters, digits and slashes).
        return {"rel": rel, "href": JsonNumber(f'"{LINK_BASE_PLACEHOLDER}{path}"')}


def invoice_json_fragment(invoice: Invoice) -> str:
    """The invoice's JSON (`invoice_json`) with placeholder link bases, for storing."""
    return dumps(invoice_json(invoice, StoredLinks()))


def invoice_json_stored(fragment: str, links: Links) -> JsonNumber:
    """A stored fragment with this request's links, ready to go into a document."""
    return JsonNumber(fragment.replace(LINK_BASE_PLACEHOLDER, links.json_base))


def _party(tag: str, *, id, org_name, line1, line2, city, state, country, phone, zip) -> Element:
    address = "\n".join(part for part in (line1, line2) if part)
    return Element(
        tag,
        children=[
            Element("id", _text(id)),
            Element("org_name", _text(org_name)),
            Element("address", _text(address)),
            Element("city", _text(city)),
            Element("state", _text(state)),
            Element("country", _text(country)),
            Element("phone", _text(phone)),
            Element("zip", _text(zip)),
        ],
    )


def _party_element(tag: str, party: dict, *, name_key: str, default_id=None) -> Element:
    """A <provider> or <buyer> from the invoice's party details (buyer_details or
    seller_details shape, frozen or live)."""
    return _party(
        tag,
        id=party.get("id", default_id),
        org_name=party.get(name_key),
        line1=party.get("address_line1"),
        line2=party.get("address_line2"),
        city=party.get("city"),
        state=party.get("state"),
        country=party.get("country"),
        phone=party.get("phone"),
        zip=party.get("zip"),
    )


def _provider(invoice: Invoice, seller: Seller | None) -> Element:
    # Frozen at issue once issued, the live profile before.
    return _party_element("provider", invoice.seller(seller), name_key="name")


def _buyer(invoice: Invoice) -> Element:
    account = invoice.account
    if account.is_deleted:
        return Element(
            "buyer",
            children=[Element("id", str(account.pk)), Element("status", "deleted")],
        )
    # Frozen at issue once issued, the live account before.
    return _party_element("buyer", invoice.buyer(), name_key="org_name", default_id=account.pk)


def invoice_xml(
    invoice: Invoice,
    *,
    seller: Seller | None,
    line_items: Sequence[LineItem],
    payment_transactions_count: int,
) -> Element:
    vat_shown = invoice.vat_rate is not None and invoice.vat_rate > 0
    children = [
        Element("id", str(invoice.pk)),
        Element("friendly_id", _text(invoice.friendly_id)),
        Element("creation_type", invoice.creation_type),
        Element("state", invoice.state),
        Element("paid_at", "" if invoice.paid_at is None else ruby_time(invoice.paid_at)),
        Element("due_on", _date_text(invoice.due_on)),
        Element("issued_on", _date_text(invoice.issued_on)),
        Element("currency", invoice.currency),
        Element("cost", ruby_decimal(invoice.cost)),
    ]
    if vat_shown:
        children.append(Element("vat_rate", ruby_decimal(cast(Decimal, invoice.vat_rate))))
        children.append(Element("vat_amount", ruby_decimal(invoice.vat_amount)))
    children += [
        Element("cost_without_vat", ruby_decimal(invoice.cost_without_vat)),
        Element(
            "period",
            children=[
                Element("from", iso_date(invoice.period)),
                Element("to", iso_date(invoice.period_end)),
            ],
        ),
        _provider(invoice, seller),
        _buyer(invoice),
        container("line-items", (line_item_xml(line) for line in line_items)),
        Element("payment_transactions_count", str(payment_transactions_count)),
    ]
    return Element("invoice", children=children, attributes={"version": "1.0"})


def invoices_xml(elements: Iterable[Element], pagination: Pagination) -> Element:
    root = Element("invoices", children=[], attributes={"version": "1.0"})
    root.append(Element("pagination", attributes=pagination.xml_attributes()))
    for element in elements:
        root.append(element)
    return root


def invoices_json(items: Sequence[Any], pagination: Pagination | None) -> dict[str, Any]:
    data: dict[str, Any] = {"invoices": [{"invoice": item} for item in items]}
    if pagination is not None and pagination.has_many_pages:
        data["metadata"] = pagination.json()
    return data


# --- line items ------------------------------------------------------------------


def line_item_wrapper(line: LineItem) -> str:
    return LINE_TYPES.get(line.type, ("", "line_item"))[1]


def line_item_json(line: LineItem, links: Links, *, buyer_id: int) -> dict[str, Any]:
    type_name = LINE_TYPES.get(line.type, ("", "line_item"))[0]
    data: dict[str, Any] = {
        "id": line.pk,
        "name": line.name,
        "description": line.description,
        "quantity": quantity(line.quantity),
        "cost": money(line.cost),
    }
    if line.metric_id is not None:
        data["metric_id"] = line.metric_id
    data["type"] = type_name
    if line.contract_id is not None:
        data["contract_id"] = line.contract_id
    if line.contract_type:
        data["contract_type"] = line.contract_type
    if line.plan_id is not None:
        data["plan_id"] = line.plan_id
    data["created_at"] = iso_time(line.created_at)
    data["updated_at"] = iso_time(line.updated_at)
    data["links"] = []
    if line.contract_id is not None:
        data["links"].append(
            links.rel(
                "application", f"/admin/api/accounts/{buyer_id}/applications/{line.contract_id}"
            )
        )
    data["links"].append(
        links.rel("invoice", f"/api/accounts/{buyer_id}/invoices/{line.invoice_id}")
    )
    return data


def line_item_xml(line: LineItem) -> Element:
    type_name = LINE_TYPES.get(line.type, ("", "line_item"))[0]
    return Element(
        "line-item",
        children=[
            Element("id", str(line.pk)),
            Element("name", line.name),
            Element("description", line.description),
            Element("quantity", plain_decimal(line.quantity)),
            Element("type", type_name),
            Element("metric_id", _text(line.metric_id)),
            Element("plan_id", _text(line.plan_id)),
            Element("contract_id", _text(line.contract_id)),
            Element("contract_type", _text(line.contract_type)),
            Element("cost", ruby_decimal(line.cost)),
        ],
    )


def line_items_json(lines: Iterable[LineItem], links: Links, *, buyer_id: int) -> dict:
    return {
        "line_items": [
            {line_item_wrapper(line): line_item_json(line, links, buyer_id=buyer_id)}
            for line in lines
        ]
    }


def line_items_xml(lines: Iterable[LineItem]) -> Element:
    return container("line_items", (line_item_xml(line) for line in lines), empty_as_pair=True)


# --- payment transactions ------------------------------------------------------------


def _action(payment: PaymentTransaction) -> str:
    """3scale knows `purchase` and `refund`: a payment recorded by hand is a purchase there."""
    if payment.action == PaymentTransaction.Action.PAYMENT:
        return PaymentTransaction.Action.PURCHASE.value
    return payment.action


def payment_transaction_json(payment: PaymentTransaction, links: Links) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": payment.pk,
        "created_at": iso_time(payment.created_at),
        "updated_at": iso_time(payment.updated_at),
        "reference": payment.reference,
        "success": payment.success,
        "amount": money(payment.amount),
        "currency": payment.currency,
        "action": _action(payment),
        "message": payment.message,
        "test": payment.test,
        "links": [
            links.rel("invoice", f"/api/invoices/{payment.invoice_id}"),
            links.rel("account", f"/admin/api/accounts/{payment.account_id}"),
        ],
    }
    return data


def _gateway_value(tag: str, value: Any) -> Element:
    if isinstance(value, dict):
        return container(tag, (_gateway_value(_safe_tag(k), v) for k, v in value.items()))
    if isinstance(value, list):
        return container(tag, (_gateway_value("item", v) for v in value))
    if value is None:
        return Element(tag)
    if isinstance(value, bool):
        return Element(tag, "true" if value else "false")
    if isinstance(value, Decimal):
        return Element(tag, plain_decimal(value))
    return Element(tag, str(value))


def _safe_tag(key: Any) -> str:
    """Gateway keys are foreign data: keep the ones that are valid names, mend the rest."""
    text = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "_-.") else "_" for ch in str(key))
    if not text or not (text[0].isalpha() or text[0] == "_") or text.lower().startswith("xml"):
        text = "_" + text
    return text


def payment_transaction_xml(payment: PaymentTransaction) -> Element:
    response: object = (
        payment.gateway_response if isinstance(payment.gateway_response, dict) else {}
    )
    # Rows stored before secrets were stripped on the way in are stripped on the way out.
    response = gateway_response_public(response)
    return Element(
        "payment_transaction",
        children=[
            Element("id", str(payment.pk)),
            Element("created_at", iso_time(payment.created_at)),
            Element("updated_at", iso_time(payment.updated_at)),
            Element("invoice_id", str(payment.invoice_id)),
            Element("account_id", str(payment.account_id)),
            Element("reference", _text(payment.reference)),
            Element("success", "true" if payment.success else "false"),
            Element("amount", ruby_decimal(payment.amount)),
            Element("currency", payment.currency),
            Element("action", _action(payment)),
            Element("message", _text(payment.message)),
            _gateway_value("gateway_response", response),
            Element("test", "true" if payment.test else "false"),
        ],
    )


def payment_transactions_json(payments: Iterable[PaymentTransaction], links: Links) -> dict:
    return {
        "payment_transactions": [
            {"payment_transaction": payment_transaction_json(payment, links)}
            for payment in payments
        ]
    }


def payment_transactions_xml(payments: Iterable[PaymentTransaction]) -> Element:
    return container(
        "payment_transactions",
        (payment_transaction_xml(payment) for payment in payments),
        empty_as_pair=True,
    )
