"""Invoice reads answered below REST framework: stored bytes, one SQL statement.

The invoice reads of both APIs (one invoice, a page of invoices) serve stored
representations (invoices.representations). Around that one query, REST
framework still wraps the request, runs its authentication, permission and
negotiation classes, and the ORM compiles the query: several times the cost
of the query itself. In the common case these views answer without them:

- a GET with no body and only the parameters listed below;
- the key checked by the same function (`billing.api.authentication.key_for_secret`:
  cached keys, expiry, revocation, `last_used_at`), taken from the same places;
- the format from the suffix, or from no `Accept` (or `*/*`, or the default
  type), as the negotiation would choose it;
- one SQL statement per read: the page's ids from the ordering index, their
  stored bodies and, unless a total is shared already or the page tells it, the
  list's capped count (`billing.lib.counting`); on PostgreSQL bound on the server
  and prepared, so that it is planned once per connection; a deep page starts
  from a position remembered for a moment (`_page`, below);
- the same envelopes, pagination and renderers (invoices.api.threescale.representations,
  billing.api.pagination), and the same headers: `Allow`, `Vary`, `ETag`,
  `Last-Modified` and a 304 for a current client, `Link`, `X-Total-Count`.

Everything else goes to the REST framework view, which answers as before:
no key or a bad one, another method, a body, any other parameter, a value
the view would refuse or read leniently, an `Accept` to negotiate, an invoice
not found or not visible, a row whose representation is not stored yet (the
view renders and stores it), an account's empty page (the view tells a
missing account from an empty one). So these views only ever answer what
the REST framework view would have answered, byte for byte: the tests send
both the same requests and compare (tests/invoices/test_fast_reads.py). The one
exception is a deep page's position, which may lag by ANCHOR_SECONDS (below).
`API_FAST_READS=0` sends every read through REST framework.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern
from django.utils.cache import patch_vary_headers

from accounts.models import ApiKey
from billing.api.authentication import bearer_credential, key_for_secret, threescale_credential
from billing.api.errors import ApiError
from billing.api.pagination import (
    MAX_PAGE,
    LinkHeaderPagination,
    PageRequest,
    page_request,
    positive_int,
)
from billing.api.renderers import DecimalJSONRenderer
from billing.api.threescale.base import conditional_response
from billing.api.threescale.params import list_values, path_id
from billing.api.threescale.renderers import (
    Document,
    ThreeScaleJSONRenderer,
    ThreeScaleXMLRenderer,
)
from billing.api.threescale.representations import Pagination
from billing.api.threescale.xml import Raw
from billing.lib.counting import (
    COUNT_CACHE_SECONDS,
    capped_count_sql,
    shared_total,
    sql_total,
)
from billing.lib.json_codec import JsonNumber
from billing.lib.months import parse_month
from invoices import representations as stored
from invoices.api.threescale import representations as rep
from invoices.api.threescale.views import DEFAULT_PER_PAGE as THREESCALE_PER_PAGE
from invoices.api.threescale.views import MAX_PER_PAGE as THREESCALE_MAX_PER_PAGE
from invoices.models import Invoice, InvoiceRepresentation

Kind = InvoiceRepresentation.Kind
logger = logging.getLogger(__name__)
Answer = Callable[..., HttpResponse | None]

_CREDENTIALS = frozenset({"access_token", "provider_key"})
_THREESCALE_LIST_PARAMETERS = _CREDENTIALS | {"page", "per_page", "state", "state[]", "month"}
_V1_LIST_PARAMETERS = frozenset({"page", "per_page", "state", "month"})
_STATES = frozenset(Invoice.State.values)

_INVOICES = connection.ops.quote_name(Invoice._meta.db_table)
_STORED = connection.ops.quote_name(InvoiceRepresentation._meta.db_table)
_NEWEST_FIRST = "ORDER BY {0}created_at DESC, {0}id DESC"

_XML = ThreeScaleXMLRenderer()
_JSON = ThreeScaleJSONRenderer()
_V1_JSON = DecimalJSONRenderer()


# --- the views -----------------------------------------------------------------------


def answered_first(answer: Answer) -> Callable[[Callable], Callable]:
    """Wrap a REST framework view: `answer` tries the request first; None hands it on."""

    def wrap(drf_view: Callable) -> Callable:
        allow = _allow(drf_view)

        @functools.wraps(drf_view)
        def view(request: HttpRequest, *args: Any, **kwargs: Any):
            if settings.API_FAST_READS and request.method == "GET" and _no_body(request):
                response = answer(request, allow, *args, **kwargs)
                if response is not None:
                    return response
            return drf_view(request, *args, **kwargs)

        return view

    return wrap


def wrap_patterns(patterns: Sequence[Any], answers: dict[str, Answer]) -> list[Any]:
    """A router's URL patterns, the ones named in `answers` wrapped by `answered_first`."""
    result = []
    for pattern in patterns:
        answer = answers.get(getattr(pattern, "name", None) or "")
        if answer is not None and isinstance(pattern, URLPattern):
            pattern = URLPattern(
                pattern.pattern,
                answered_first(answer)(pattern.callback),
                pattern.default_args,
                pattern.name,
            )
        result.append(pattern)
    return result


def threescale_invoice(
    request: HttpRequest, allow: str, pk: str, account_id: str | None = None, format=None
) -> HttpResponse | None:
    """`GET /api/invoices/{id}` and `/api/accounts/{account_id}/invoices/{id}`."""
    renderer = _threescale_renderer(request, format)
    if renderer is None or not set(request.GET) <= _CREDENTIALS:
        return None
    invoice_id = path_id(pk)
    buyer_id = None if account_id is None else path_id(account_id)
    if invoice_id is None or (account_id is not None and buyer_id is None):
        return None
    key = _threescale_key(request)
    if key is None:
        return None
    kind = Kind.THREESCALE_XML if renderer is _XML else Kind.THREESCALE_JSON
    found = _stored_invoice(kind, invoice_id, key, buyer_id)
    if found is None:
        return None
    updated_at, body = found
    if renderer is _XML:
        document = Document(xml=Raw(body), last_modified=updated_at)
    else:
        fragment = rep.invoice_json_stored(body, rep.Links(request))
        document = Document(json={"invoice": fragment}, last_modified=updated_at)
    return _threescale_response(request, allow, renderer, document)


def threescale_invoice_list(
    request: HttpRequest, allow: str, account_id: str | None = None, format=None
) -> HttpResponse | None:
    """`GET /api/invoices` and `/api/accounts/{account_id}/invoices`: newest first,
    by `state` and `month`, paged as 3scale pages."""
    renderer = _threescale_renderer(request, format)
    if renderer is None or not set(request.GET) <= _THREESCALE_LIST_PARAMETERS:
        return None
    buyer_id = None if account_id is None else path_id(account_id)
    if account_id is not None and buyer_id is None:
        return None
    filters = _list_filters(list_values(request.GET, "state"), request.GET.get("month"))
    if filters is None:
        return None
    key = _threescale_key(request)
    if key is None or (buyer_id is not None and key.account_id not in (None, buyer_id)):
        return None
    page = page_request(
        request.GET, default_per_page=THREESCALE_PER_PAGE, max_per_page=THREESCALE_MAX_PER_PAGE
    )
    kind = Kind.THREESCALE_XML if renderer is _XML else Kind.THREESCALE_JSON
    where, params = _visible(key, buyer_id)
    found = _page(kind, [*where, *filters[0]], [*params, *filters[1]], page)
    if found is None or (buyer_id is not None and not found[0]):
        return None  # an empty page of an account: the view tells whether it exists
    bodies, total = found
    pagination = Pagination(page=page.page, per_page=page.per_page, total_entries=total)
    if renderer is _XML:
        document = Document(xml=rep.invoices_xml([Raw(body) for body in bodies], pagination))
    else:
        links = rep.Links(request)
        items = [rep.invoice_json_stored(body, links) for body in bodies]
        document = Document(json=rep.invoices_json(items, pagination))
    return _threescale_response(request, allow, renderer, document)


def v1_invoice(request: HttpRequest, allow: str, pk: str) -> HttpResponse | None:
    """`GET /v1/invoices/{id}` (with no query: any parameter is a filter there)."""
    if request.GET or not _v1_json_accepted(request):
        return None
    invoice_id = path_id(pk)
    key = _v1_key(request)
    if invoice_id is None or key is None:
        return None
    found = _stored_invoice(Kind.V1_JSON, invoice_id, key, None)
    if found is None:
        return None
    return _v1_response(allow, _V1_JSON.render(JsonNumber(found[1])))


def v1_invoice_list(request: HttpRequest, allow: str) -> HttpResponse | None:
    """`GET /v1/invoices`: newest first, by `state` and `month`, with `Link` and
    `X-Total-Count`; any other filter or ordering goes to the filter set."""
    if not set(request.GET) <= _V1_LIST_PARAMETERS or not _v1_json_accepted(request):
        return None
    pagination = LinkHeaderPagination()
    try:
        pagination.page = positive_int(request.GET, "page", 1, MAX_PAGE)
        pagination.per_page = positive_int(
            request.GET, "per_page", pagination.default_per_page, pagination.max_per_page
        )
    except ApiError:
        return None
    states = None
    if "state" in request.GET:
        states = [
            part.strip()
            for value in request.GET.getlist("state")
            for part in value.split(",")
            if part.strip()
        ]
        if not states:
            return None
    month = request.GET.get("month")
    if month is not None and not month.strip():
        return None
    filters = _list_filters(list(dict.fromkeys(states or ())), month)
    key = _v1_key(request)
    if filters is None or key is None:
        return None
    page = PageRequest(page=pagination.page, per_page=pagination.per_page)
    where, params = _visible(key, None)
    found = _page(Kind.V1_JSON, [*where, *filters[0]], [*params, *filters[1]], page)
    if found is None:
        return None
    bodies, total = found
    pagination.request = request
    pagination.count = total
    if page.offset >= total:
        bodies = []
    response = _v1_response(allow, _V1_JSON.render([JsonNumber(body) for body in bodies]))
    response["Link"] = pagination.link_header()
    response["X-Total-Count"] = str(total)
    return response


# --- what they share -------------------------------------------------------------------


def _no_body(request: HttpRequest) -> bool:
    return request.META.get("CONTENT_LENGTH") in (None, "", "0") and not request.META.get(
        "HTTP_TRANSFER_ENCODING"
    )


def _allow(drf_view: Callable) -> str:
    """The `Allow` header REST framework sends for this view (its bound actions, HEAD
    with GET, and OPTIONS), found the way its `as_view` binds them."""
    cls = drf_view.cls  # type: ignore[attr-defined]
    instance = cls(**getattr(drf_view, "initkwargs", {}))
    actions = dict(getattr(drf_view, "actions", None) or {})
    if "get" in actions and "head" not in actions:
        actions["head"] = actions["get"]
    for method, action in actions.items():
        setattr(instance, method, getattr(instance, action))
    return ", ".join(instance.allowed_methods)


def _threescale_renderer(request: HttpRequest, suffix: str | None):
    """The renderer 3scale's negotiation picks, when it needs no Accept parsing."""
    if "format" in request.GET:
        return None
    if suffix:
        return {"xml": _XML, "json": _JSON}.get(suffix)
    accept = request.META.get("HTTP_ACCEPT")
    if accept is None or accept in ("*/*", _XML.media_type):
        return _XML  # 3scale's default
    return None


def _v1_json_accepted(request: HttpRequest) -> bool:
    accept = request.META.get("HTTP_ACCEPT")
    return "format" not in request.GET and accept in (None, "*/*", _V1_JSON.media_type)


def _threescale_key(request: HttpRequest) -> ApiKey | None:
    raw = threescale_credential(request.GET, request.META)
    return None if raw is None else key_for_secret(raw)


def _v1_key(request: HttpRequest) -> ApiKey | None:
    raw = bearer_credential(request.META)
    return None if raw is None else key_for_secret(raw)


def _visible(key: ApiKey, buyer_id: int | None) -> tuple[list[str], list[Any]]:
    """The invoices a key may see (invoices.selectors.invoice_visible_to), and one buyer's."""
    where: list[str] = []
    params: list[Any] = []
    if key.account_id is not None:
        where.append("i.account_id = %s")
        params.append(key.account_id)
    if buyer_id is not None:
        where.append("i.account_id = %s")
        params.append(buyer_id)
    return where, params


def _list_filters(states: list[str], month: str | None) -> tuple[list[str], list[Any]] | None:
    """`state` (every one a real state) and `month` (YYYY-MM) as SQL; None when a value
    is one the views read otherwise (refused, or matching nothing)."""
    where: list[str] = []
    params: list[Any] = []
    if states:
        if not set(states) <= _STATES:
            return None
        where.append(f"i.state IN ({', '.join(['%s'] * len(states))})")
        params += states
    month = (month or "").strip()
    if month:
        try:
            first_day = parse_month(month)
        except ValueError:
            return None
        where.append("i.period = %s")
        params.append(connection.ops.adapt_datefield_value(first_day))
    return where, params


def _page(
    kind: str, where: list[str], params: list[Any], page: PageRequest, *, seek: bool = True
) -> tuple[list[str], int] | None:
    """One page's stored bodies, newest first, and the list's total; None when a row
    has none stored (the view renders and stores it). A deep page starts from the
    nearest position a read of the same list remembered (`_anchor`)."""
    condition = f" WHERE {' AND '.join(where)}" if where else ""
    list_key = _anchors_key(condition, params)
    anchor = _anchor(list_key, page.offset) if seek else None
    from_anchor, offset, seek_params, found_at = "", page.offset, [], time.time()
    if anchor is not None:
        anchor_offset, found_at, invoice_id = anchor
        # From the remembered invoice on, by the ordering index (its created_at read
        # by its id: no timestamp crosses the wire; a deleted one matches no row).
        from_anchor = (
            f"{' AND' if where else ' WHERE'} (i.created_at, i.id) <= "
            f"((SELECT a.created_at FROM {_INVOICES} a WHERE a.id = %s), %s)"
        )
        offset, seek_params = page.offset - anchor_offset, [invoice_id, invoice_id]
    from_where = f"FROM {_INVOICES} i{condition}"
    # Without a shared total, the capped count rides in the page's statement.
    counted = _cached(lambda: shared_total(from_where, params)) is None
    count_column = f", ({capped_count_sql(from_where)}) AS capped" if counted else ""
    with _cursor() as cursor:
        cursor.execute(
            f"SELECT r.body, p.id{count_column} FROM ("
            f"SELECT i.id, i.created_at {from_where}{from_anchor} "
            f"{_NEWEST_FIRST.format('i.')} LIMIT %s OFFSET %s"
            f") p LEFT JOIN {_STORED} r"
            " ON r.invoice_id = p.id AND r.kind = %s AND r.format_version = %s "
            + _NEWEST_FIRST.format("p."),
            [
                *(params if counted else []),
                *params,
                *seek_params,
                page.per_page,
                offset,
                kind,
                stored.format_version(),
            ],
        )
        rows = cursor.fetchall()
        if anchor is not None and not rows:
            _forget(list_key, anchor[0])  # its invoice may be gone: read by OFFSET
            return _page(kind, where, params, page, seek=False)
        if any(row[0] is None for row in rows):
            return None
        if rows and page.offset >= ANCHOR_FROM_OFFSET and offset:
            _remember(list_key, page.offset, found_at, rows[0][1])
        bodies = [row[0] for row in rows]
        if 0 < len(bodies) < page.per_page or (page.page == 1 and not bodies):
            total = page.offset + len(bodies)  # the page tells it
        else:
            capped = rows[0][2] if counted and rows else None
            total = sql_total(cursor, from_where, params, capped=capped, shared_first=not counted)
    return bodies, total


# --- deep pages: positions remembered for a moment ----------------------------------------
# OFFSET reads every skipped index entry: page 1000 of a list costs about 2 ms of the
# database's time against 0.1 ms for the first. A read of a deep page remembers where
# it started (the first row's id) for ANCHOR_SECONDS; a read of the same
# list at that offset or past it (the next page of a client walking the list) seeks to
# that row through the ordering index and skips only the difference. Like the list's
# total past ten thousand (billing.lib.counting), the position may lag by that long: a
# deep page read within ANCHOR_SECONDS of an invoice's creation (or, in a filtered list,
# of a change that moves one in or out of it) is placed as it was before that change,
# its rows as they are now (and, when it is the short last page, the total it tells
# is as of that position too). Pages before ANCHOR_FROM_OFFSET are always exact.

ANCHOR_FROM_OFFSET = 1000
ANCHOR_SECONDS = COUNT_CACHE_SECONDS
ANCHORS_KEPT = 32


def _anchors_key(condition: str, params: list[Any]) -> str:
    source = f"{condition}|{params!r}".encode()
    return "list-anchors:" + hashlib.sha1(source).hexdigest()


def _anchor(list_key: str, offset: int) -> tuple[int, float, int] | None:
    """The remembered position nearest below `offset`: (its offset, when it was read
    by OFFSET, the id of the invoice the page started with)."""
    if offset < ANCHOR_FROM_OFFSET:
        return None
    anchors = _cached(lambda: cache.get(list_key)) or {}
    oldest = time.time() - ANCHOR_SECONDS
    usable = [at for at, (when, _) in anchors.items() if at <= offset and when > oldest]
    if not usable:
        return None
    at = max(usable)
    when, invoice_id = anchors[at]
    return at, when, invoice_id


def _forget(list_key: str, offset: int) -> None:
    """Drop the position remembered at `offset` (its invoice is gone)."""

    def drop() -> None:
        anchors = cache.get(list_key) or {}
        if anchors.pop(offset, None) is not None:
            cache.set(list_key, anchors, ANCHOR_SECONDS)

    _cached(drop)


def _remember(list_key: str, offset: int, when: float, invoice_id: int) -> None:
    """Remember where the page at `offset` starts, as of `when` (a position found from
    another one is as old as that one: no chain of pages outlives ANCHOR_SECONDS)."""

    def store() -> None:
        anchors = cache.get(list_key) or {}
        anchors.pop(offset, None)
        anchors[offset] = (when, invoice_id)
        while len(anchors) > ANCHORS_KEPT:
            anchors.pop(next(iter(anchors)))
        cache.set(list_key, anchors, ANCHOR_SECONDS)

    _cached(store)


def _cached(call: Callable[[], Any]) -> Any:
    """`call()` on the cache; None when the cache cannot answer (Redis down): these
    reads then count and page as if nothing were shared, as REST framework's do below
    ten thousand rows, instead of failing."""
    try:
        return call()
    except Exception:  # noqa: BLE001 - any cache backend's error means "nothing there"
        logger.warning("cache unavailable for an invoice list", exc_info=True)
        return None


def _stored_invoice(
    kind: str, invoice_id: int, key: ApiKey, buyer_id: int | None
) -> tuple[dt.datetime, str] | None:
    """The visible invoice's `updated_at` (in UTC) and stored body of `kind`, in one
    statement; None when it is not visible or has no such row stored."""
    where, params = _visible(key, buyer_id)
    with _cursor() as cursor:
        cursor.execute(
            f"SELECT i.updated_at, r.body FROM {_INVOICES} i JOIN {_STORED} r"
            " ON r.invoice_id = i.id AND r.kind = %s AND r.format_version = %s"
            f" WHERE i.id = %s{''.join(' AND ' + clause for clause in where)}",
            [kind, stored.format_version(), invoice_id, *params],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    updated_at, body = row
    if updated_at.tzinfo is None:  # SQLite: stored in UTC, read back naive
        updated_at = updated_at.replace(tzinfo=dt.UTC)
    return updated_at, body


def _cursor():
    """A Django cursor (seen by query counting and the debug log). On PostgreSQL it
    binds parameters on the server, so that psycopg prepares each statement on its first
    run when DATABASE_PREPARED_STATEMENTS is on (billing/settings.py): these few
    statements are planned once per connection. (Django's own cursors bind on the
    client and never prepare.)"""
    if connection.vendor != "postgresql":
        return connection.cursor()
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        # As `connection.cursor()` does, with the server-binding cursor class.
        return connection._prepare_cursor(  # type: ignore[attr-defined]
            psycopg.Cursor(connection.connection)
        )


def _threescale_response(
    request: HttpRequest, allow: str, renderer, document: Document
) -> HttpResponse:
    response = HttpResponse(
        renderer.render(document),
        content_type=f"{renderer.media_type}; charset={renderer.charset}",
    )
    response["Allow"] = allow
    patch_vary_headers(response, ("Accept",))
    return conditional_response(request, response, document.last_modified)


def _v1_response(allow: str, content: bytes) -> HttpResponse:
    response = HttpResponse(
        content, content_type=f"{_V1_JSON.media_type}; charset={_V1_JSON.charset}"
    )
    response["Allow"] = allow
    return response
