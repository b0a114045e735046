"""GET/POST /v1/invoices, GET/PATCH/PUT/DELETE /v1/invoices/{id} and the state actions.

Every change goes through invoices.services; this module only translates
HTTP to service calls and the domain's exceptions to /v1 errors.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response

from billing.api.errors import ApiError, ErrorSerializer
from billing.api.idempotency import KEY_SCHEMA, IdempotencyMixin
from billing.api.pagination import LinkHeaderPagination
from billing.api.permissions import request_api_key
from billing.api.v1 import V1APIMixin
from billing.lib.json_codec import JsonNumber
from billing.lib.months import month_start
from invoices import representations as stored
from invoices import selectors, services
from invoices.api.v1 import einvoice as einvoice_api
from invoices.api.v1.filters import InvoiceFilterSet
from invoices.api.v1.serializers import (
    CreditNoteCreateSerializer,
    CreditNoteSerializer,
    InvoiceCancelSerializer,
    InvoiceCreateSerializer,
    InvoiceIssueSerializer,
    InvoiceMarkPaidSerializer,
    InvoiceReplaceSerializer,
    InvoiceSerializer,
    InvoiceUpdateSerializer,
    PaymentCreateSerializer,
    v1_field,
)
from invoices.exceptions import (
    AccountNotBillable,
    ChargeFailed,
    InvalidInvoiceTransition,
    InvoiceError,
    InvoiceLocked,
    InvoiceNotChargeable,
    InvoiceValidationError,
    RefundFailed,
)
from invoices.models import CreditNote, Invoice, InvoiceRepresentation, PaymentTransaction

State = Invoice.State
_STORED_KIND = InvoiceRepresentation.Kind.V1_JSON

# The state an action leads to; the states it may start from are the model's
# (the transition map, or what a draft is), spelled out in the refusal.
_OUTCOMES: dict[str, str] = {
    "issue": State.PENDING,
    "cancel": State.CANCELLED,
    "charge": State.PAID,
    "mark_paid": State.PAID,
}
_DONE = {"issue": "issued", "cancel": "cancelled", "charge": "charged", "mark_paid": "marked paid"}
_DRAFT_ONLY = {
    "update": "only open invoices can be changed; cancel it and create a new invoice instead",
    "partial_update": "only open invoices can be changed; cancel it and create a new invoice "
    "instead",
    "destroy": "only open invoices can be deleted; cancel it instead",
}


# Actions whose services word their own refusals.
_OWN_MESSAGES = frozenset({"credit_notes", "payments"})


def _states_text(states) -> str:
    names = [str(state) for state in State.values if state in states]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def _refusal(action: str) -> str:
    if action in _DRAFT_ONLY:
        return _DRAFT_ONLY[action]
    if action == "charge":
        return (
            f"only {_states_text(Invoice.CHARGEABLE_STATES)} invoices can be charged; "
            "issue it first"
        )
    if action in _OUTCOMES:
        sources = Invoice.TRANSITIONS[_OUTCOMES[action]]
        return f"only {_states_text(sources)} invoices can be {_DONE[action]}"
    return "this is not allowed in its current state"


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


_AUTH_ERRORS = {
    401: _error("Missing, unknown, revoked or expired API key."),
    403: _error("A read key cannot write."),
}
_WRITE_ERRORS = {
    **_AUTH_ERRORS,
    400: _error("Invalid fields, named in `details`; nothing is written."),
    413: _error("The body is larger than the limit."),
    415: _error("The body is not JSON."),
}
_IDEMPOTENCY_ERRORS = {
    409: _error(
        "Not allowed in the invoice's state, or a request with the same "
        "Idempotency-Key is still running."
    ),
    422: _error("The Idempotency-Key was used for another request."),
}
_NOT_FOUND = {404: _error("No such invoice (or not visible to this key).")}
_IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    KEY_SCHEMA,
    OpenApiParameter.HEADER,
    required=False,
    description="Makes a retried POST safe: the first response is stored for 24 hours and "
    "replayed (with `Idempotent-Replayed: true`) for the same key and body.",
)
_LIST_HEADERS = [
    OpenApiParameter(
        "X-Total-Count",
        int,
        OpenApiParameter.HEADER,
        response=[200],
        description="How many invoices match, over all pages.",
    ),
    OpenApiParameter(
        "Link",
        str,
        OpenApiParameter.HEADER,
        response=[200],
        description='RFC 8288 links to the first, prev, next and last pages (rel="...").',
    ),
]
_REPLAYED_HEADER = OpenApiParameter(
    "Idempotent-Replayed",
    str,
    OpenApiParameter.HEADER,
    response=[200, 201],
    description="`true` when this is the stored response to an earlier request with the same "
    "Idempotency-Key.",
)
_ID = OpenApiParameter("id", int, OpenApiParameter.PATH, description="The invoice id.")
_LIST_HEADERS_DOC = (
    "The body is a bare array; the page metadata is in the headers: `X-Total-Count` "
    "(all matching invoices) and `Link` (RFC 8288: first, prev, next, last)."
)


def _action_schema(summary: str, request, description: str = "") -> dict:
    responses = {200: InvoiceSerializer, **_WRITE_ERRORS, **_IDEMPOTENCY_ERRORS, **_NOT_FOUND}
    return {
        "summary": summary,
        "description": description,
        "request": request,
        "responses": responses,
        "parameters": [_ID, _IDEMPOTENCY_HEADER, _REPLAYED_HEADER],
    }


@extend_schema_view(
    list=extend_schema(
        summary="List invoices",
        description=_LIST_HEADERS_DOC,
        parameters=_LIST_HEADERS,
        responses={200: InvoiceSerializer(many=True), **_AUTH_ERRORS, 400: _WRITE_ERRORS[400]},
    ),
    create=extend_schema(
        summary="Create an invoice",
        description=(
            "With the seed's `customer_id, amount, date, due_date`: an issued invoice with one "
            "line of `amount`. With `line_items`: one line each. With `draft: true`: an open "
            "invoice to edit and issue later."
        ),
        request=InvoiceCreateSerializer,
        responses={201: InvoiceSerializer, **_WRITE_ERRORS, **_IDEMPOTENCY_ERRORS},
        parameters=[_IDEMPOTENCY_HEADER, _REPLAYED_HEADER],
        examples=[
            OpenApiExample(
                # Customer 2 is Globex Corp (USD) after `manage.py seed_demo` on an empty database.
                "The seed's request",
                value={
                    "customer_id": 2,
                    "amount": 100.0,
                    "date": "2023-03-01",
                    "due_date": "2023-03-31",
                },
                request_only=True,
            )
        ],
    ),
    retrieve=extend_schema(
        summary="Get an invoice",
        parameters=[_ID],
        responses={200: InvoiceSerializer, **_AUTH_ERRORS, **_NOT_FOUND},
    ),
    update=extend_schema(
        summary="Replace a draft's month and lines",
        description="Requires `date`, and `amount` or `line_items` (or both, when they agree).",
        parameters=[_ID],
        request=InvoiceReplaceSerializer,
        responses={
            200: InvoiceSerializer,
            **_WRITE_ERRORS,
            **_NOT_FOUND,
            409: _error("The invoice is no longer open."),
        },
    ),
    partial_update=extend_schema(
        summary="Change a draft's month or lines",
        parameters=[_ID],
        request=InvoiceUpdateSerializer,
        responses={
            200: InvoiceSerializer,
            **_WRITE_ERRORS,
            **_NOT_FOUND,
            409: _error("The invoice is no longer open."),
        },
    ),
    destroy=extend_schema(
        summary="Delete a draft",
        parameters=[_ID],
        responses={
            204: None,
            **_AUTH_ERRORS,
            **_NOT_FOUND,
            409: _error("The invoice is no longer open: cancel it."),
        },
    ),
)
class InvoiceViewSet(IdempotencyMixin, V1APIMixin, viewsets.GenericViewSet):
    serializer_class = InvoiceSerializer
    filterset_class = InvoiceFilterSet
    pagination_class = LinkHeaderPagination
    lookup_value_regex = "[0-9]+"

    def get_queryset(self) -> QuerySet[Invoice]:
        return selectors.invoice_list_with_details(request_api_key(self.request))

    @property
    def actor(self) -> str:
        # Who changed what, in the invoice's event log: "api_key:<prefix>".
        return getattr(self.request.user, "actor", "")

    def get_serializer_context(self) -> dict:
        context = dict(super().get_serializer_context())
        context["api_key"] = request_api_key(self.request)
        context["actor"] = self.actor
        return context

    def _respond(
        self, invoice: Invoice, status_code: int = status.HTTP_200_OK, **kwargs
    ) -> Response:
        # Re-read with the lines and payment prefetched: the services return the
        # bare row, and the answer must show what was committed.
        fresh = self.get_queryset().get(pk=invoice.pk)
        return Response(InvoiceSerializer(fresh).data, status=status_code, **kwargs)

    # --- errors ---------------------------------------------------------------

    def handle_exception(self, exc: Exception):
        if isinstance(exc, InvoiceError):
            exc = self._domain_error(exc)
        return super().handle_exception(exc)

    def _domain_error(self, exc: InvoiceError) -> ApiError:
        if isinstance(exc, InvoiceValidationError):
            field = v1_field(exc.field)
            return ApiError(
                "The request has invalid fields; see details.",
                code="validation_error",
                details={field: [exc.message]},
            )
        if isinstance(exc, ChargeFailed):
            return ApiError(
                self._decline_message(),
                status_code=status.HTTP_402_PAYMENT_REQUIRED,
                code="payment_failed",
            )
        if isinstance(exc, RefundFailed):
            return ApiError(
                f"{exc.message}. Nothing was written; try again, or credit without `refund` "
                "to add the amount to the customer's credit balance.",
                status_code=status.HTTP_402_PAYMENT_REQUIRED,
                code="refund_failed",
            )
        if isinstance(exc, AccountNotBillable):
            return ApiError(
                f"{exc.message} Restore the customer's account first.",
                status_code=status.HTTP_409_CONFLICT,
                code="account_not_billable",
            )
        if isinstance(exc, (InvalidInvoiceTransition, InvoiceLocked, InvoiceNotChargeable)):
            return ApiError(
                exc.message if self.action in _OWN_MESSAGES else self._refusal_message(),
                status_code=status.HTTP_409_CONFLICT,
                code="invalid_state",
            )
        return ApiError(exc.message, status_code=status.HTTP_409_CONFLICT, code="conflict")

    def _current_invoice(self) -> Invoice | None:
        pk = self.kwargs.get(self.lookup_field)
        return Invoice.objects.filter(pk=pk).first() if pk else None

    def _refusal_message(self) -> str:
        invoice = self._current_invoice()
        why = _refusal(self.action)
        if invoice is not None and invoice.state == _OUTCOMES.get(self.action):
            why = "nothing to do"
        if invoice is None:
            return f"Not allowed: {why}."
        return f"Invoice {invoice.pk} is {invoice.state}: {why}."

    def _decline_message(self) -> str:
        invoice = self._current_invoice()
        attempt = (
            PaymentTransaction.objects.filter(invoice=invoice, success=False)
            .order_by("-created_at", "-id")
            .first()
            if invoice
            else None
        )
        reason = f" ({attempt.message})" if attempt and attempt.message else ""
        state = f"; the invoice is now {invoice.state}" if invoice else ""
        return (
            f"The payment was declined{reason}{state}. The attempt is recorded; update the "
            "customer's payment method and charge again, or mark the invoice paid."
        )

    # --- collection -------------------------------------------------------------

    def _stored(self) -> QuerySet[Invoice]:
        """Visible invoices with their stored /v1 representation (invoices.representations)."""
        visible = selectors.invoice_visible_to(request_api_key(self.request))
        return stored.with_stored(visible, _STORED_KIND)

    def list(self, request, *args, **kwargs) -> Response:
        # One query for the page, whose rows are already JSON; the array is built around them.
        queryset = self.filter_queryset(self._stored())
        page = self.paginate_queryset(queryset)
        items = [JsonNumber(body) for _, body in stored.bodies(page or [], _STORED_KIND)]
        return self.get_paginated_response(items)

    def create(self, request, *args, **kwargs) -> Response:
        serializer = InvoiceCreateSerializer(
            data=request.data, context=self.get_serializer_context()
        )
        serializer.is_valid(raise_exception=True)
        body = serializer.validated_data
        day = body.get("date")
        draft = body.get("draft", False)
        invoice = services.invoice_create_with_lines(
            account=body["account"],
            period=month_start(day) if day else None,
            lines=serializer.new_lines() or [],
            issue=not draft,
            issued_on=None if draft else day,
            due_on=None if draft else body.get("due_date"),
            actor=self.actor,
        )
        location = request.build_absolute_uri(f"{request.path.rstrip('/')}/{invoice.pk}")
        return self._respond(invoice, status.HTTP_201_CREATED, headers={"Location": location})

    # --- one invoice ---------------------------------------------------------------

    def retrieve(self, request, *args, **kwargs) -> Response:
        # get_object's lookup (filters, 404, permissions) on the stored representation;
        # without query parameters the filters would only order the one row.
        queryset = self._stored()
        if request.query_params:
            queryset = self.filter_queryset(queryset)
        lookup = self.lookup_url_kwarg or self.lookup_field
        invoice = get_object_or_404(queryset, **{self.lookup_field: self.kwargs[lookup]})
        self.check_object_permissions(request, invoice)
        body = stored.body(invoice, _STORED_KIND)
        if body is None:
            raise Http404
        return Response(JsonNumber(body))

    def update(self, request, *args, **kwargs) -> Response:
        invoice = self.get_object()
        serializer = InvoiceUpdateSerializer(
            invoice,
            data=request.data,
            partial=kwargs.get("partial", False),
            context=self.get_serializer_context(),
        )
        serializer.is_valid(raise_exception=True)
        day = serializer.validated_data.get("date")
        invoice = services.invoice_replace_lines(
            invoice=invoice,
            lines=serializer.new_lines(),
            period=month_start(day) if day else None,
            actor=self.actor,
        )
        return self._respond(invoice)

    def partial_update(self, request, *args, **kwargs) -> Response:
        return self.update(request, *args, partial=True, **kwargs)

    def destroy(self, request, *args, **kwargs) -> Response:
        services.invoice_delete(invoice=self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)

    # --- state changes -------------------------------------------------------------

    @extend_schema(
        **_action_schema(
            "Issue an invoice",
            InvoiceIssueSerializer,
            "Numbers and dates the invoice, freezes its terms and customer, renders the PDF.",
        )
    )
    @action(detail=True, methods=["post"])
    def issue(self, request, *args, **kwargs) -> Response:
        invoice = self.get_object()
        body = self._body(InvoiceIssueSerializer)
        invoice = services.invoice_issue(
            invoice=invoice,
            actor=self.actor,
            issued_on=body.get("date"),
            due_on=body.get("due_date"),
        )
        return self._respond(invoice)

    @extend_schema(**_action_schema("Cancel an invoice", InvoiceCancelSerializer))
    @action(detail=True, methods=["post"])
    def cancel(self, request, *args, **kwargs) -> Response:
        invoice = self.get_object()
        body = self._body(InvoiceCancelSerializer)
        invoice = services.invoice_cancel(
            invoice=invoice, actor=self.actor, reason=body.get("reason", "")
        )
        return self._respond(invoice)

    @extend_schema(
        **{
            **_action_schema(
                "Charge the customer's card",
                None,
                "A declined charge is recorded and answered with 402 `payment_failed`.",
            ),
            "responses": {
                200: InvoiceSerializer,
                402: _error("The card was declined; the attempt is recorded."),
                400: _error("A malformed Idempotency-Key or request body."),
                **_AUTH_ERRORS,
                **_IDEMPOTENCY_ERRORS,
                **_NOT_FOUND,
            },
        }
    )
    @action(detail=True, methods=["post"])
    def charge(self, request, *args, **kwargs) -> Response:
        invoice = self.get_object()
        self._body(None)
        invoice = services.invoice_charge(invoice=invoice, actor=self.actor)
        return self._respond(invoice)

    @extend_schema(
        **_action_schema(
            "Record a payment received outside the gateway",
            InvoiceMarkPaidSerializer,
            "For a bank transfer, say; the payment is recorded with the given method.",
        )
    )
    @action(detail=True, methods=["post"])
    def mark_paid(self, request, *args, **kwargs) -> Response:
        invoice = self.get_object()
        body = self._body(InvoiceMarkPaidSerializer)
        invoice = services.invoice_mark_paid(
            invoice=invoice,
            actor=self.actor,
            method=body.get("method", PaymentTransaction.Method.BANK_TRANSFER),
            reference=body.get("reference", ""),
        )
        return self._respond(invoice)

    @extend_schema(**einvoice_api.SCHEMA)
    @action(detail=True, methods=["get"], renderer_classes=einvoice_api.RENDERERS)
    def einvoice(self, request, *args, **kwargs):
        syntax = request.query_params.get("syntax", "ubl")
        return einvoice_api.einvoice_response(self.get_object(), syntax)

    @extend_schema(
        methods=["GET"],
        summary="List an invoice's credit notes",
        description="All of them, newest first (an invoice has few: no pages).",
        parameters=[_ID],
        responses={200: CreditNoteSerializer(many=True), **_AUTH_ERRORS, **_NOT_FOUND},
    )
    @extend_schema(
        methods=["POST"],
        summary="Credit an issued invoice",
        description=(
            "A credit note with its own number (CN-YYYY-NNNNNNNN) for a net `amount` or for "
            "`lines` of the invoice, at the invoice's VAT rate; never more than what is left "
            "to credit of the invoice. It first reduces what is still due; the rest, taken "
            "from what was paid, is refunded to the card (`refund: true`) or added to the "
            "customer's credit balance, which the next invoice consumes."
        ),
        request=CreditNoteCreateSerializer,
        parameters=[_ID, _IDEMPOTENCY_HEADER, _REPLAYED_HEADER],
        responses={
            201: CreditNoteSerializer,
            402: _error("The gateway refused the refund; nothing is written."),
            **_WRITE_ERRORS,
            **_IDEMPOTENCY_ERRORS,
            **_NOT_FOUND,
        },
    )
    @action(
        detail=True,
        methods=["get", "post"],
        url_path="credit_notes",
        filterset_class=None,
        pagination_class=None,
    )
    def credit_notes(self, request, *args, **kwargs) -> Response:
        invoice = self.get_object()
        notes = selectors.credit_note_list_with_details(request_api_key(request))
        if request.method == "GET":
            return Response(CreditNoteSerializer(notes.filter(invoice=invoice), many=True).data)
        body = self._body(CreditNoteCreateSerializer)
        lines = body.get("lines")
        note = services.credit_note_create(
            invoice=invoice,
            reason=body["reason"],
            amount=body.get("amount"),
            lines=None
            if lines is None
            else [services.CreditLine(line["line_item_id"], line["quantity"]) for line in lines],
            refund=body.get("refund", False),
            actor=self.actor,
        )
        location = request.build_absolute_uri(f"/v1/credit_notes/{note.pk}")
        return Response(
            CreditNoteSerializer(notes.get(pk=note.pk)).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": location},
        )

    @extend_schema(
        summary="Record a payment",
        description=(
            "A payment received outside the gateway (bank transfer, cheque, other), whole or "
            "partial. The invoice becomes `paid` when nothing is due any more; an amount above "
            "what is due goes to the customer's credit balance."
        ),
        request=PaymentCreateSerializer,
        parameters=[_ID, _IDEMPOTENCY_HEADER, _REPLAYED_HEADER],
        responses={201: InvoiceSerializer, **_WRITE_ERRORS, **_IDEMPOTENCY_ERRORS, **_NOT_FOUND},
    )
    @action(detail=True, methods=["post"])
    def payments(self, request, *args, **kwargs) -> Response:
        invoice = self.get_object()
        body = self._body(PaymentCreateSerializer)
        services.invoice_payment_record(
            invoice=invoice,
            amount=body["amount"],
            paid_on=body["date"],
            method=body["method"],
            reference=body.get("reference", ""),
            actor=self.actor,
        )
        return self._respond(invoice, status.HTTP_201_CREATED)

    def _body(self, serializer_class) -> dict:
        """Validate an action's optional body (an empty body means all defaults)."""
        data = self.request.data
        if serializer_class is None:
            if data:
                raise ApiError(
                    "This action takes no body.",
                    code="validation_error",
                    details={name: ["unknown field"] for name in data}
                    if isinstance(data, dict)
                    else {"non_field_errors": ["expected no body"]},
                )
            return {}
        serializer = serializer_class(data=data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


@extend_schema_view(
    list=extend_schema(
        summary="List credit notes",
        description="Newest first. The body is a bare array; the page metadata is in the "
        "headers: `X-Total-Count` and `Link` (RFC 8288: first, prev, next, last).",
        parameters=_LIST_HEADERS,
        responses={
            200: CreditNoteSerializer(many=True),
            **_AUTH_ERRORS,
            400: _error("A bad `page` or `per_page`."),
        },
    ),
    retrieve=extend_schema(
        summary="Get a credit note",
        parameters=[OpenApiParameter("id", int, OpenApiParameter.PATH, description="The id.")],
        responses={
            200: CreditNoteSerializer,
            **_AUTH_ERRORS,
            404: _error("No such credit note (or not visible to this key)."),
        },
    ),
)
class CreditNoteViewSet(V1APIMixin, viewsets.ReadOnlyModelViewSet):
    """Credit notes are created on their invoice (POST /v1/invoices/{id}/credit_notes)."""

    serializer_class = CreditNoteSerializer
    pagination_class = LinkHeaderPagination
    lookup_value_regex = "[0-9]+"

    def get_queryset(self) -> QuerySet[CreditNote]:
        return selectors.credit_note_list_with_details(request_api_key(self.request))

    @extend_schema(**einvoice_api.CREDIT_NOTE_SCHEMA)
    @action(detail=True, methods=["get"], renderer_classes=einvoice_api.RENDERERS)
    def einvoice(self, request, *args, **kwargs):
        syntax = request.query_params.get("syntax", "ubl")
        return einvoice_api.credit_note_einvoice_response(self.get_object(), syntax)
