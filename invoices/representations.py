"""Stored representations of invoices: rendered when an invoice changes, served as stored.

An invoice's API representations change only when one of its services runs
(or, for one that shows the live buyer or seller, when the account or the
seller profile changes). Each one is rendered then, by the APIs' own
renderers, and stored in `InvoiceRepresentation`, one row per kind:

- `3scale_json`: the 3scale JSON object (`invoice_json`), each link's base a
  placeholder the request's scheme and host replace (`invoice_json_stored`);
- `3scale_xml`: the 3scale `<invoice>` element (`invoice_xml`), no declaration;
- `v1_json`: the /v1 object (`InvoiceSerializer`).

Nothing that varies per request is stored: the link base is filled in per
request, pagination and envelopes are built around the rows, and the PDF's
signed link is not part of an invoice's representation.

Writes. A service that changes invoices calls `invoices_changed` inside its
transaction, under its locks: the rows are rendered again and stored with the
change. A change to more than EAGER_RENDER_LIMIT invoices (a billing run)
deletes their rows instead, so that no stale row is visible after the commit,
and queues their rendering after it. An account's change renews the rows that
show it (`account_changed`); a seller profile's change deletes the XML of the
invoices that show it live (`seller_changed`), rendered again on read.

Reads. `with_stored` annotates a queryset with each invoice's stored body of
the current format version; `bodies` renders and stores the ones that have
none (bulk-loaded or older rows, a render still queued), so an answer is never
wrong, only slower. A render stores its rows only under share locks on the
account, the invoice and (when it shows the live profile) the seller, taken
with SKIP LOCKED: a writer holding one of them is changing what was read, so
that render is served but not stored, and the writer's own render follows.

`FORMAT_VERSION` is a number bumped by hand plus a fingerprint of the
renderers' source: a deploy that changes how an invoice is rendered makes
every stored row stale, to be rendered again on read or by
`manage.py render_representations`.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from collections.abc import Iterable, Iterator, Sequence

from celery import shared_task
from django.conf import settings
from django.db import connection, transaction
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.utils import timezone

from accounts.models import Account, Seller
from invoices.models import Invoice, InvoiceRepresentation

Kind = InvoiceRepresentation.Kind
KINDS: tuple[str, ...] = tuple(Kind.values)
# The kinds that show the buyer account or the seller profile (live until issued).
KINDS_WITH_PARTIES: tuple[str, ...] = (Kind.THREESCALE_XML, Kind.V1_JSON)

# Bump when rendering changes in a way the fingerprint cannot see (a setting, a template).
RENDERING_REVISION = 1
# Whose source decides the bytes: a change to any of them re-renders every invoice.
RENDERER_MODULES = (
    "invoices.representations",
    "invoices.models",
    "invoices.api.threescale.representations",
    "invoices.api.v1.serializers",
    "billing.api.threescale.representations",
    "billing.api.threescale.values",
    "billing.api.threescale.xml",
    "billing.lib.json_codec",
    "billing.lib.money",
)
# Invoices rendered within the transaction that changed them; a change to more (a
# billing run's thousands) is rendered after its commit by tasks, or, with no broker,
# by reads and `manage.py render_representations`.
EAGER_RENDER_LIMIT = 200
# Invoices per render statement batch (loading, locking, storing).
BATCH_SIZE = 500


@functools.cache
def format_version() -> str:
    """`<revision>-<fingerprint>`: the hand-kept revision and a hash of the renderers' code."""
    digest = hashlib.sha256()
    for name in RENDERER_MODULES:
        spec = importlib.util.find_spec(name)
        origin = spec.origin if spec is not None else None
        digest.update(name.encode())
        if origin and origin.endswith(".py"):
            with open(origin, "rb") as source:
                digest.update(source.read())
    return f"{RENDERING_REVISION}-{digest.hexdigest()[:16]}"


# --- rendering -----------------------------------------------------------------


def _uses_live_seller(invoice: Invoice) -> bool:
    return not (invoice.is_issued and invoice.seller_details)


def _load(ids: Sequence[int]) -> list[Invoice]:
    """The invoices with everything their representations show, in a fixed number of queries."""
    from invoices.selectors import invoice_list_with_details

    return list(invoice_list_with_details(None).filter(pk__in=list(ids)).order_by("pk"))


def render(invoice: Invoice, *, seller: Seller | None, payment_count: int) -> dict[str, str]:
    """Every representation of one invoice, by the APIs' renderers.

    `invoice` comes with its account, lines and successful purchase loaded
    (`invoice_list_with_details`); `seller` is needed when it shows the live profile.
    """
    from billing.lib.json_codec import dumps
    from invoices.api.threescale import representations as threescale
    from invoices.api.v1.serializers import InvoiceSerializer

    xml = threescale.invoice_xml(
        invoice,
        seller=seller,
        line_items=list(invoice.line_items.all()),
        payment_transactions_count=payment_count,
    )
    return {
        Kind.THREESCALE_JSON: threescale.invoice_json_fragment(invoice),
        Kind.THREESCALE_XML: xml.to_string(),
        Kind.V1_JSON: dumps(InvoiceSerializer(invoice).data),
    }


def _storable(body: str) -> bool:
    # A lone surrogate (which no text column can hold) is rendered on every read instead.
    try:
        body.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _share_locked(model, ids: Iterable[int]) -> set[int]:
    """Take share locks on these rows, skipping the ones a writer holds; the ids taken.

    SQLite has no row locks: its transactions begin IMMEDIATE (the settings), so a
    render holds the only write lock and no writer runs meanwhile.
    """
    wanted = sorted(set(ids))
    if connection.vendor != "postgresql" or not wanted:
        return set(wanted)
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {table} WHERE id = ANY(%s) ORDER BY id FOR SHARE SKIP LOCKED",
            [wanted],
        )
        return {row[0] for row in cursor.fetchall()}


def render_and_store(ids: Iterable[int]) -> dict[int, dict[str, str]]:
    """Render these invoices' representations, store the ones safe to store; all of them
    by invoice id (an invoice deleted meanwhile is left out)."""
    from invoices.api.threescale.documents import payment_counts

    wanted = sorted(set(ids))
    result: dict[int, dict[str, str]] = {}
    version = format_version()
    for start in range(0, len(wanted), BATCH_SIZE):
        batch = wanted[start : start + BATCH_SIZE]
        with transaction.atomic():
            owners = dict(
                Invoice.objects.filter(pk__in=batch).order_by().values_list("pk", "account_id")
            )
            accounts = _share_locked(Account, set(owners.values()))
            invoice_ids = _share_locked(
                Invoice, [pk for pk, owner in owners.items() if owner in accounts]
            )
            invoices = _load(batch)
            live = [invoice for invoice in invoices if _uses_live_seller(invoice)]
            seller = Seller.load() if live else None
            seller_locked = seller is not None and bool(_share_locked(Seller, [seller.pk]))
            counts = payment_counts(invoice.pk for invoice in invoices)
            rows = []
            now = timezone.now()
            for invoice in invoices:
                bodies = render(invoice, seller=seller, payment_count=counts.get(invoice.pk, 0))
                result[invoice.pk] = bodies
                locked = invoice.pk in invoice_ids and invoice.account_id in accounts
                if not locked or (_uses_live_seller(invoice) and not seller_locked):
                    continue  # a writer is changing it: its own render follows
                rows += [
                    InvoiceRepresentation(
                        invoice_id=invoice.pk,
                        kind=kind,
                        format_version=version,
                        body=body,
                        rendered_at=now,
                    )
                    for kind, body in sorted(bodies.items())
                    if _storable(body)
                ]
            if rows:
                InvoiceRepresentation.objects.bulk_create(
                    rows,
                    update_conflicts=True,
                    unique_fields=["invoice", "kind"],
                    update_fields=["format_version", "body", "rendered_at"],
                )
    return result


# --- reads -----------------------------------------------------------------------


def stored_body(kind: str) -> Subquery:
    """The invoice's stored `kind` of the current format version (None if there is none)."""
    return Subquery(
        InvoiceRepresentation.objects.filter(
            invoice=OuterRef("pk"), kind=kind, format_version=format_version()
        ).values("body")[:1]
    )


def with_stored(qs: QuerySet[Invoice], kind: str, *fields: str) -> QuerySet[Invoice]:
    """`qs` loading only `fields` (and the id) and each invoice's stored body as `stored_body`."""
    return qs.only("pk", *fields).annotate(stored_body=stored_body(kind))


def bodies(invoices: Sequence[Invoice], kind: str) -> list[tuple[Invoice, str]]:
    """Each invoice (from `with_stored`) with its body of `kind`; the missing ones are
    rendered (and stored) now, in a fixed number of queries whatever their number."""
    missing = [invoice.pk for invoice in invoices if invoice.stored_body is None]  # type: ignore[attr-defined]
    rendered = render_and_store(missing) if missing else {}
    result = []
    for invoice in invoices:
        body = invoice.stored_body  # type: ignore[attr-defined]
        if body is None:
            fresh = rendered.get(invoice.pk)
            if fresh is None:
                continue  # deleted since the page was read
            body = fresh[kind]
        result.append((invoice, body))
    return result


def body(invoice: Invoice, kind: str) -> str | None:
    """One invoice's body of `kind` (None if it was deleted meanwhile)."""
    found = bodies([invoice], kind)
    return found[0][1] if found else None


# --- writes ----------------------------------------------------------------------


def _chunks(ids: Sequence[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), BATCH_SIZE):
        yield list(ids[start : start + BATCH_SIZE])


def invoices_changed(invoice_ids: Iterable[int], kinds: Sequence[str] = KINDS) -> None:
    """Inside the transaction that changed these invoices (holding their accounts' and
    their own row locks): render their representations again and store them with the
    change. Past EAGER_RENDER_LIMIT invoices (a billing run's thousands) the rows of
    `kinds` are deleted instead, and rendered after the commit by a task (or by reads)."""
    ids = sorted(set(invoice_ids))
    if not ids:
        return
    if len(ids) <= EAGER_RENDER_LIMIT:
        render_and_store(ids)
        return
    for chunk in _chunks(ids):
        InvoiceRepresentation.objects.filter(invoice_id__in=chunk, kind__in=list(kinds)).delete()
    transaction.on_commit(lambda: _render_after_commit(ids), robust=True)


def _render_after_commit(ids: list[int]) -> None:
    if getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False):
        return  # inline, thousands would stall the caller: reads render them
    for chunk in _chunks(ids):
        render_representations.delay(chunk)


@shared_task(name="invoices.render_representations", acks_late=True)
def render_representations(invoice_ids: list[int]) -> int:
    """Render the stored representations these invoices lack; how many were rendered."""
    missing = missing_ids(Invoice.objects.filter(pk__in=invoice_ids))
    return len(render_and_store(missing)) if missing else 0


def missing_ids(qs: QuerySet[Invoice]) -> list[int]:
    """Ids of invoices in `qs` lacking a stored representation of the current version."""
    complete = (
        InvoiceRepresentation.objects.filter(format_version=format_version())
        .values("invoice_id")
        .order_by()
    )
    every_kind = Q()
    for kind in KINDS:
        every_kind &= Q(pk__in=complete.filter(kind=kind))
    return list(qs.exclude(every_kind).order_by("pk").values_list("pk", flat=True))


def account_changed(account_id: int) -> None:
    """The account's invoices show it (live until issued; the XML shows a deleted
    account as deleted, issued or not): their representations follow it."""
    ids = list(Invoice.objects.filter(account_id=account_id).values_list("pk", flat=True))
    invoices_changed(ids, kinds=KINDS_WITH_PARTIES)


def seller_changed() -> None:
    """The XML of every invoice showing the live seller profile follows it (rendered
    again on read: a seller edit may touch every unissued invoice)."""
    live = Invoice.objects.filter(Q(issued_on__isnull=True) | Q(seller_details={}))
    InvoiceRepresentation.objects.filter(
        kind=Kind.THREESCALE_XML, invoice_id__in=live.values("pk")
    ).delete()


@receiver(post_save, sender=Account, dispatch_uid="invoices.representations.account")
def _account_saved(sender, instance: Account, created: bool, **kwargs) -> None:
    if not created and not kwargs.get("raw"):
        account_changed(instance.pk)


@receiver(post_save, sender=Seller, dispatch_uid="invoices.representations.seller")
def _seller_saved(sender, instance: Seller, created: bool, **kwargs) -> None:
    if not created and not kwargs.get("raw"):
        seller_changed()


# --- backfill ----------------------------------------------------------------------


def backfill(
    *, batch_size: int = BATCH_SIZE, limit: int | None = None, shard: int = 0, shards: int = 1
) -> Iterator[int]:
    """Render every invoice lacking a stored representation of the current version,
    newest first (what lists show first), in batches; yields each batch's count.

    `shard` of `shards`: only the invoices whose id is `shard` modulo `shards`, so
    that several processes share the work.
    """
    stored = InvoiceRepresentation.objects.filter(format_version=format_version()).count()
    if stored == len(KINDS) * Invoice.objects.count():
        return  # every invoice has every kind (one row per invoice and kind)
    done = 0
    below: int | None = None
    while limit is None or done < limit:
        qs = Invoice.objects.order_by("-pk")
        if below is not None:
            qs = qs.filter(pk__lt=below)
        window = list(qs.values_list("pk", flat=True)[: batch_size * shards])
        if not window:
            return
        below = window[-1]
        mine = [pk for pk in window if pk % shards == shard]
        missing = missing_ids(Invoice.objects.filter(pk__in=mine)) if mine else []
        if limit is not None:
            missing = missing[: limit - done]
        if missing:
            render_and_store(missing)
            done += len(missing)
            yield len(missing)
