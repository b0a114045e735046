"""The 3scale Billing API views: each one reads through a selector or writes
through a service and answers with a Document; billing.api.threescale.base does the rest."""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.db.models import QuerySet
from django.http import HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_safe
from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework.exceptions import NotAcceptable, NotFound
from rest_framework.response import Response

from accounts.selectors import account_visible_to
from billing.api.pagination import page_request
from billing.api.threescale import schema as shared
from billing.api.threescale.base import ThreeScaleContentNegotiation, ThreeScaleViewSet
from billing.api.threescale.errors import MissingParameter, Unprocessable
from billing.api.threescale.params import (
    decimal,
    optional_id,
    param,
    parse_month,
    path_id,
    text,
)
from billing.api.threescale.renderers import Document
from invoices import representations as stored
from invoices import services
from invoices.api.threescale import schema as s
from invoices.api.threescale.documents import (
    STORED_INVOICE_FIELDS,
    invoice_document,
    invoice_page_document,
    line_item_document,
    line_items_document,
    payment_transactions_document,
    stored_invoice_document,
    stored_invoice_kind,
)
from invoices.api.threescale.filters import invoice_search, newest_first
from invoices.api.threescale.representations import TYPES_BY_3SCALE_NAME
from invoices.exceptions import InvoiceError, InvoiceLocked
from invoices.models import Invoice
from invoices.pdf import invoice_pdf_response
from invoices.selectors import invoice_visible_for_account, invoice_visible_to

DEFAULT_PER_PAGE = 20
# 3scale's code accepts 1..500 (its reference docs say 20): we follow the code.
MAX_PER_PAGE = 500
# 3scale's `PUT .../state` names the target state; `cancel` is the one alias.
STATE_ALIASES = {"cancel": Invoice.State.CANCELLED}
PERIOD_FORMAT_MESSAGE = "Billing period format should be YYYY-MM"
PDF_LINK_SALT = "invoices.api.threescale.pdf-link"


class InvoiceLookupMixin:
    # The invoice domain's errors name their field: 3scale's 422.
    field_errors = (InvoiceError,)

    def _visible(self, pk, account_id) -> QuerySet[Invoice]:
        """The invoice `pk` if this key may see it (and it belongs to `account_id`)."""
        invoice_id = path_id(pk)
        if invoice_id is None:
            raise NotFound()
        qs = invoice_visible_to(self.api_key)  # type: ignore[attr-defined]
        if account_id is not None:
            buyer_id = path_id(account_id)
            if buyer_id is None:
                raise NotFound()
            qs = qs.filter(account_id=buyer_id)
        return qs.filter(pk=invoice_id)

    def get_invoice(self, pk, *, account_id=None) -> Invoice:
        """The invoice if this key may see it (and it belongs to `account_id`), else 404."""
        invoice = self._visible(pk, account_id).select_related("account").first()
        if invoice is None:
            raise NotFound()
        return invoice

    def stored_invoice(self, request, pk, *, account_id=None) -> Document:
        """The invoice's stored representation in the negotiated format, else 404."""
        kind = stored_invoice_kind(request)
        qs = stored.with_stored(self._visible(pk, account_id), kind, *STORED_INVOICE_FIELDS)
        invoice = qs.first()
        document = None if invoice is None else stored_invoice_document(request, invoice)
        if document is None:
            raise NotFound()
        return document


def _period(value, *, ignore_objects: bool = False):
    """A `YYYY-MM` period, 422 otherwise; a whole object sent back on update is ignored."""
    if value is None:
        return None
    if ignore_objects and isinstance(value, (dict, list)):
        return None
    period = parse_month(value) if isinstance(value, str) else None
    if period is None:
        raise Unprocessable.on("period", PERIOD_FORMAT_MESSAGE)
    return period


# Rails wraps the body keys that are Invoice attributes under `invoice`.
INVOICE_ATTRIBUTES = frozenset(
    {f.name for f in Invoice._meta.concrete_fields} | {"period", "friendly_id", "invoice"}
)


def _has_invoice_attributes(data) -> bool:
    keys = data.keys() if hasattr(data, "keys") else ()
    return any(key in INVOICE_ATTRIBUTES or str(key).startswith("invoice[") for key in keys)


def _location(request, path: str) -> str:
    """The created resource's URL, as Rails' `respond_with` sends it with a 201."""
    return request.build_absolute_uri(path)


@extend_schema(tags=["3scale: invoices"])
class InvoiceViewSet(InvoiceLookupMixin, ThreeScaleViewSet):
    """Invoices: list, create, read, update, state change and charge."""

    @extend_schema(
        summary="Invoice List",
        parameters=s.LIST_PARAMETERS,
        responses=shared.responses(200, s.ThreeScaleInvoiceListSerializer, errors=(403,)),
    )
    def list(self, request, format=None):
        """Invoices, newest first, filtered by state and month, 20 per page."""
        qs = newest_first(invoice_search(invoice_visible_to(self.api_key), request.query_params))
        page = page_request(
            request.query_params, default_per_page=DEFAULT_PER_PAGE, max_per_page=MAX_PER_PAGE
        )
        return Response(invoice_page_document(request, qs, page))

    @extend_schema(
        summary="Invoice Create",
        request=s.ThreeScaleInvoiceCreateSerializer,
        responses=shared.responses(
            201, s.ThreeScaleInvoiceEnvelopeSerializer, errors=(400, 403, 422)
        ),
    )
    def create(self, request, format=None):
        """Create an open invoice for an account and month (default: this UTC month)."""
        raw_account_id = param(request, "account_id")
        if raw_account_id is None or raw_account_id == "":
            raise MissingParameter("account_id")
        try:
            account_id = optional_id(raw_account_id, "account_id")
        except Unprocessable:
            account_id = None  # no such account either
        account = account_visible_to(self.api_key).filter(pk=account_id or 0).first()
        if account is None:
            # Rails validates the invoice's buyer: an unknown id leaves it blank.
            raise Unprocessable.on("buyer_account", "can't be blank")
        period = _period(param(request, "period", wrapper="invoice"))
        invoice = services.invoice_create(account=account, period=period, actor=self.actor)
        return Response(
            invoice_document(request, invoice),
            status=201,
            headers={"Location": _location(request, f"/api/invoices/{invoice.pk}")},
        )

    @extend_schema(
        summary="Invoice Read",
        responses=shared.responses(200, s.ThreeScaleInvoiceEnvelopeSerializer),
    )
    def retrieve(self, request, pk=None, format=None):
        """One invoice."""
        return Response(self.stored_invoice(request, pk))

    @extend_schema(
        summary="Invoice Update",
        request=s.ThreeScaleInvoiceUpdateSerializer,
        responses=shared.responses(
            200, s.ThreeScaleInvoiceEnvelopeSerializer, errors=(400, 403, 404, 422)
        ),
    )
    def update(self, request, pk=None, format=None):
        """Change `period` and/or `friendly_id`; every other key is ignored.

        A body with no invoice attribute at all is 400, as Rails' `params.require`."""
        invoice = self.get_invoice(pk)
        if not _has_invoice_attributes(request.data):
            raise MissingParameter("invoice")
        period = _period(param(request, "period", wrapper="invoice"), ignore_objects=True)
        friendly_id = param(request, "friendly_id", wrapper="invoice")
        if isinstance(friendly_id, (dict, list)):
            friendly_id = None
        invoice = services.invoice_update(
            invoice=invoice,
            period=period,
            friendly_id=text(friendly_id, "friendly_id"),
            actor=self.actor,
        )
        return Response(invoice_document(request, invoice))

    @extend_schema(
        summary="Invoice Update (PATCH)",
        request=s.ThreeScaleInvoiceUpdateSerializer,
        responses=shared.responses(
            200, s.ThreeScaleInvoiceEnvelopeSerializer, errors=(400, 403, 404, 422)
        ),
    )
    def partial_update(self, request, pk=None, format=None):
        """Same as PUT."""
        return self.update(request, pk=pk, format=format)

    @extend_schema(
        summary="Invoice Update state",
        request=s.ThreeScaleInvoiceStateSerializer,
        responses=shared.responses(
            200, s.ThreeScaleInvoiceEnvelopeSerializer, errors=(403, 404, 422)
        ),
    )
    def state(self, request, pk=None, format=None):
        """Move the invoice to a target state (`cancel` means cancelled)."""
        invoice = self.get_invoice(pk)
        raw = param(request, "state")
        requested = raw if isinstance(raw, str) else ("" if raw is None else str(raw))
        target = STATE_ALIASES.get(requested, requested)
        if target not in Invoice.TRANSITIONS:
            raise Unprocessable.on("base", f"Cannot transition to {requested}")
        invoice = services.invoice_transition(invoice=invoice, to_state=target, actor=self.actor)
        return Response(invoice_document(request, invoice))

    @extend_schema(
        summary="Invoice Charge",
        request=None,
        responses=shared.responses(
            201, s.ThreeScaleInvoiceEnvelopeSerializer, errors=(403, 404, 422)
        ),
    )
    def charge(self, request, pk=None, format=None):
        """Charge the buyer's card for a pending, unpaid or failed invoice."""
        invoice = self.get_invoice(pk)
        invoice = services.invoice_charge(invoice=invoice, actor=self.actor)
        return Response(
            invoice_document(request, invoice),
            status=201,
            headers={"Location": _location(request, f"/api/invoices/{invoice.pk}")},
        )


@extend_schema(tags=["3scale: invoices"])
class AccountInvoiceViewSet(InvoiceLookupMixin, ThreeScaleViewSet):
    """One buyer account's invoices."""

    @extend_schema(
        summary="Invoice List by Account",
        parameters=s.LIST_PARAMETERS,
        responses=shared.responses(200, s.ThreeScaleInvoiceListSerializer),
    )
    def list(self, request, account_id=None, format=None):
        """One account's invoices, as the invoice list."""
        buyer_id = path_id(account_id)
        qs = None if buyer_id is None else invoice_visible_for_account(self.api_key, buyer_id)
        if qs is None:
            raise NotFound()
        qs = newest_first(invoice_search(qs, request.query_params))
        page = page_request(
            request.query_params, default_per_page=DEFAULT_PER_PAGE, max_per_page=MAX_PER_PAGE
        )
        return Response(invoice_page_document(request, qs, page))

    @extend_schema(
        summary="Invoice by Account",
        responses=shared.responses(200, s.ThreeScaleInvoiceEnvelopeSerializer),
    )
    def retrieve(self, request, account_id=None, pk=None, format=None):
        # 3scale 2.16: the invoice must belong to that buyer (newer 3scale forgot to check).
        return Response(self.stored_invoice(request, pk, account_id=account_id))


@extend_schema(tags=["3scale: line items"])
class LineItemViewSet(InvoiceLookupMixin, ThreeScaleViewSet):
    """The lines of an invoice."""

    @extend_schema(
        summary="Invoice Line Items List",
        responses=shared.responses(200, s.ThreeScaleLineItemListSerializer),
    )
    def list(self, request, invoice_id=None, format=None):
        """The invoice's line items (not paginated)."""
        return Response(line_items_document(request, self.get_invoice(invoice_id)))

    @extend_schema(
        summary="Create Line Item for an Invoice",
        request=s.ThreeScaleLineItemCreateSerializer,
        responses=shared.responses(
            201, s.ThreeScaleLineItemEnvelopeSerializer, errors=(403, 404, 422)
        ),
    )
    def create(self, request, invoice_id=None, format=None):
        """Add a line to an open or finalized invoice; `cost` is the line total."""
        invoice = self.get_invoice(invoice_id)
        fields = self._line_fields(request)
        line = services.line_item_add(invoice=invoice, actor=self.actor, **fields)
        return Response(
            line_item_document(request, line, buyer_id=invoice.account_id),
            status=201,
            headers={
                "Location": _location(request, f"/api/invoices/{invoice.pk}/line_items/{line.pk}")
            },
        )

    @extend_schema(
        summary="Delete Line Item of an Invoice",
        request=None,
        responses={
            200: shared.EMPTY,
            (403, shared.JSON): OpenApiResponse(
                PolymorphicProxySerializer(
                    component_name="ThreeScaleLineItemDeleteRefusal",
                    serializers=[shared.ErrorsSchema, shared.ErrorSchema],
                    resource_type_field_name=None,
                ),
                description="Invalid invoice state (`errors`), or a key that cannot write "
                "(`error`).",
            ),
            (403, shared.XML): OpenApiResponse(
                PolymorphicProxySerializer(
                    component_name="ThreeScaleLineItemDeleteRefusalXML",
                    serializers=[shared.ErrorsXMLSchema, shared.ErrorSchema],
                    resource_type_field_name=None,
                ),
                description="<errors>…</errors> or <error>…</error>",
            ),
            (404, shared.JSON): OpenApiResponse(shared.NotFoundSchema, description="Not found."),
            (404, shared.XML): shared.EMPTY_XML,
            (406, shared.TEXT): shared.UNKNOWN_FORMAT,
        },
    )
    def destroy(self, request, invoice_id=None, pk=None, format=None):
        """Remove a line from an open or finalized invoice."""
        invoice = self.get_invoice(invoice_id)
        line_id = path_id(pk)
        line = invoice.line_items.filter(pk=line_id).first() if line_id else None
        if line is None:
            raise NotFound()
        try:
            services.line_item_remove(line_item=line, actor=self.actor)
        except InvoiceLocked as exc:
            # 3scale's responder answers a failed DELETE with 403, not 422.
            raise Unprocessable.on(exc.field, exc.message, status_code=403) from None
        return Response(Document(), status=200)

    @staticmethod
    def _line_fields(request) -> dict:
        def get(name):
            return param(request, name, wrapper="line_item")

        cost = get("cost")
        if cost is None or cost == "":
            raise Unprocessable.on("cost", "can't be blank")
        quantity = get("quantity")
        type_name = text(get("type"), "type") or ""
        if type_name not in TYPES_BY_3SCALE_NAME:
            raise Unprocessable.on("base", "Invalid Line item type")
        contract_id = optional_id(get("contract_id"), "contract_id")
        if contract_id is None:
            contract_id = optional_id(get("cinstance_id"), "cinstance_id")
        fields = {
            "name": text(get("name"), "name") or "",
            "description": text(get("description"), "description") or "",
            "cost": decimal(cost, "cost"),
            "type": TYPES_BY_3SCALE_NAME[type_name],
            "metric_id": optional_id(get("metric_id"), "metric_id"),
            "plan_id": optional_id(get("plan_id"), "plan_id"),
            "contract_id": contract_id,
            "contract_type": "Cinstance" if contract_id is not None else "",
        }
        if quantity is not None and quantity != "":
            fields["quantity"] = decimal(quantity, "quantity")
        return fields


@extend_schema(tags=["3scale: invoices"])
class PaymentTransactionViewSet(InvoiceLookupMixin, ThreeScaleViewSet):
    """The payment transactions of an invoice."""

    @extend_schema(
        summary="Invoice Payment Transactions List",
        responses=shared.responses(200, s.ThreeScalePaymentTransactionListSerializer),
    )
    def list(self, request, invoice_id=None, format=None):
        """Every charge attempt on the invoice, successful or not."""
        return Response(payment_transactions_document(request, self.get_invoice(invoice_id)))


class _AnyAcceptNegotiation(ThreeScaleContentNegotiation):
    """A PDF link is opened by browsers and download tools with any Accept header."""

    def select_renderer(self, request, renderers, format_suffix=None):
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except NotAcceptable:
            return renderers[0], renderers[0].media_type


def pdf_signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=PDF_LINK_SALT)


@extend_schema(tags=["3scale: invoices"])
class InvoicePdfViewSet(InvoiceLookupMixin, ThreeScaleViewSet):
    """The invoice PDF, through a signed link that expires."""

    content_negotiation_class = _AnyAcceptNegotiation

    @extend_schema(
        summary="Invoice PDF",
        description=(
            "Redirects (302) to a signed link to the invoice PDF. The link needs no key "
            "and expires after INVOICE_PDF_LINK_MAX_AGE seconds."
        ),
        responses={
            302: OpenApiResponse(description="Location: the signed, expiring PDF link."),
            (403, shared.JSON): OpenApiResponse(shared.ErrorSchema, description="Access denied."),
            (404, shared.JSON): OpenApiResponse(shared.NotFoundSchema, description="Not found."),
            # Without `Accept: application/json` the errors are 3scale's XML ones.
            (403, shared.XML): OpenApiResponse(shared.ErrorSchema, description="<error>…</error>"),
            (404, shared.XML): shared.EMPTY_XML,
        },
    )
    def retrieve(self, request, pk=None):
        invoice = self.get_invoice(pk)
        token = pdf_signer().sign(str(invoice.pk))
        location = request.build_absolute_uri(
            reverse("threescale-invoice-pdf-download", args=[token])
        )
        return Response(Document(), status=302, headers={"Location": location})


@require_safe
def invoice_pdf_download(request, token: str):
    """The signed link: the stored PDF of an issued invoice; drafts and cancelled ones render now."""
    max_age = getattr(settings, "INVOICE_PDF_LINK_MAX_AGE", 300)
    try:
        value = pdf_signer().unsign(token, max_age=max_age)
    except signing.SignatureExpired:
        return HttpResponse(
            "This link has expired; request the PDF again.", status=410, content_type="text/plain"
        )
    except signing.BadSignature:
        return HttpResponse("Invalid link.", status=403, content_type="text/plain")
    invoice_id = path_id(value)
    invoice = Invoice.objects.select_related("account").filter(pk=invoice_id or 0).first()
    if invoice is None:
        return HttpResponse("Not found.", status=404, content_type="text/plain")
    return invoice_pdf_response(invoice)
