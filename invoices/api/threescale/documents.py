"""Responses of the 3scale API: a page of invoices, one invoice, its lines and payments.

Only the negotiated format is built, and every related row a page needs is
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
from invoices.api.threescale import representations as rep
from invoices.models import Invoice, LineItem, PaymentTransaction


def _payment_counts(invoice_ids: Iterable[int]) -> dict[int, int]:
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
    if wants_xml(request):
        invoices, pagination = paginate(
            qs.select_related("account").prefetch_related("line_items"), page
        )
        seller = Seller.load()
        counts = _payment_counts(invoice.pk for invoice in invoices)
        elements = [
            rep.invoice_xml(
                invoice,
                seller=seller,
                line_items=list(invoice.line_items.all()),
                payment_transactions_count=counts.get(invoice.pk, 0),
            )
            for invoice in invoices
        ]
        return Document(xml=rep.invoices_xml(elements, pagination))
    invoices, pagination = paginate(qs, page)
    links = rep.Links(request)
    items = [rep.invoice_json(invoice, links) for invoice in invoices]
    return Document(json=rep.invoices_json(items, pagination))


def invoice_document(request, invoice: Invoice) -> Document:
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
