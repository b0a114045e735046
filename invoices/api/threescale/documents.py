"""Responses of the 3scale API: a page of invoices, one invoice, its lines and payments.

Only the negotiated format is built. An invoice read (a page, or one) serves
the invoice's stored representation (invoices.representations) in one query
with the page, the envelope, pagination and this request's links built around
it; an invoice without one is rendered (and stored) with everything it needs
fetched in a fixed number of queries (buyer with the invoice, lines in one
prefetch, payment counts in one grouped query, the seller once), so a page
of 20 costs what a page of 1 does.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count, QuerySet

from accounts.models import Seller
from billing.api.pagination import PageRequest
from billing.api.threescale.renderers import Document, wants_xml
from billing.api.threescale.representations import paginate
from billing.api.threescale.xml import Raw
from invoices import representations as stored
from invoices.api.threescale import representations as rep
from invoices.models import Invoice, InvoiceRepresentation, LineItem, PaymentTransaction

Kind = InvoiceRepresentation.Kind


def payment_counts(invoice_ids: Iterable[int]) -> dict[int, int]:
    ids = list(invoice_ids)
    if not ids:
        return {}
    rows = (
        PaymentTransaction.objects.filter(invoice_id__in=ids)
        .order_by()
        .values("invoice_id")
        .annotate(n=Count("id"))
    )
    return {row["invoice_id"]: row["n"] for row in rows}


def invoice_page_document(request, qs: QuerySet[Invoice], page: PageRequest) -> Document:
    """A page of invoices: their stored fragments, in the envelope with its pagination."""
    kind = Kind.THREESCALE_XML if wants_xml(request) else Kind.THREESCALE_JSON
    invoices, pagination = paginate(qs, page, select=lambda rows: stored.with_stored(rows, kind))
    found = stored.bodies(invoices, kind)
    if kind == Kind.THREESCALE_XML:
        return Document(xml=rep.invoices_xml([Raw(body) for _, body in found], pagination))
    links = rep.Links(request)
    items = [rep.invoice_json_stored(body, links) for _, body in found]
    return Document(json=rep.invoices_json(items, pagination))


# What `stored_invoice_document` needs of the invoice besides its stored body.
STORED_INVOICE_FIELDS = ("updated_at",)


def stored_invoice_kind(request) -> str:
    return Kind.THREESCALE_XML if wants_xml(request) else Kind.THREESCALE_JSON


def stored_invoice_document(request, invoice: Invoice) -> Document | None:
    """One invoice as stored (`invoice` from `with_stored`); None if deleted meanwhile."""
    kind = stored_invoice_kind(request)
    body = stored.body(invoice, kind)
    if body is None:
        return None
    if kind == Kind.THREESCALE_XML:
        return Document(xml=Raw(body), last_modified=invoice.updated_at)
    return Document(
        json={"invoice": rep.invoice_json_stored(body, rep.Links(request))},
        last_modified=invoice.updated_at,
    )


def invoice_document(request, invoice: Invoice) -> Document:
    """One invoice rendered now (the answer to a write, from the row it wrote)."""
    if wants_xml(request):
        xml = rep.invoice_xml(
            invoice,
            seller=Seller.load(),
            line_items=list(invoice.line_items.all()),
            payment_transactions_count=invoice.payment_transactions.count(),
        )
        return Document(xml=xml, last_modified=invoice.updated_at)
    return Document(
        json={"invoice": rep.invoice_json(invoice, rep.Links(request))},
        last_modified=invoice.updated_at,
    )


def line_items_document(request, invoice: Invoice) -> Document:
    lines = list(invoice.line_items.all())
    if wants_xml(request):
        return Document(xml=rep.line_items_xml(lines))
    return Document(
        json=rep.line_items_json(lines, rep.Links(request), buyer_id=invoice.account_id)
    )


def line_item_document(request, line: LineItem, *, buyer_id: int) -> Document:
    if wants_xml(request):
        return Document(xml=rep.line_item_xml(line))
    data = rep.line_item_json(line, rep.Links(request), buyer_id=buyer_id)
    return Document(json={rep.line_item_wrapper(line): data})


def payment_transactions_document(request, invoice: Invoice) -> Document:
    payments = list(invoice.payment_transactions.order_by("created_at", "id"))
    if wants_xml(request):
        return Document(xml=rep.payment_transactions_xml(payments))
    return Document(json=rep.payment_transactions_json(payments, rep.Links(request)))
