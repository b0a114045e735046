"""GET /v1/invoices/{id}/einvoice?syntax=ubl|cii: an issued invoice as EN 16931 XML;
GET /v1/credit_notes/{id}/einvoice: a credit note likewise."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import status
from rest_framework.renderers import BaseRenderer

from billing.api.errors import ApiError, ErrorSerializer
from billing.api.renderers import DecimalJSONRenderer
from invoices.einvoice import EInvoiceUnavailable, credit_note_xml, einvoice_xml
from invoices.models import CreditNote, Invoice

SYNTAXES = {
    "ubl": "UBL 2.1, Peppol BIS Billing 3.0",
    "cii": "UN/CEFACT CII D16B, the XML of Factur-X (EN 16931 profile)",
}


class EInvoiceXMLRenderer(BaseRenderer):
    """Lets clients ask for `application/xml`; errors are still answered in JSON."""

    media_type = "application/xml"
    format = "xml"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, bytes):
            return data
        response = (renderer_context or {}).get("response")
        if response is not None:
            response["Content-Type"] = "application/json"
        return DecimalJSONRenderer().render(data, "application/json", renderer_context)


RENDERERS = [DecimalJSONRenderer, EInvoiceXMLRenderer]


def _check_syntax(syntax: str) -> None:
    if syntax not in SYNTAXES:
        raise ApiError(
            "The request has invalid fields; see details.",
            code="validation_error",
            details={"syntax": [f"must be one of: {', '.join(SYNTAXES)}"]},
        )


def _xml_response(xml: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(xml, content_type="application/xml; charset=utf-8")
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    return response


def einvoice_response(invoice: Invoice, syntax: str) -> HttpResponse:
    _check_syntax(syntax)
    try:
        xml = einvoice_xml(invoice, syntax)
    except EInvoiceUnavailable as exc:
        raise ApiError(
            f"Invoice {invoice.pk} is {invoice.state}: {exc}",
            status_code=status.HTTP_409_CONFLICT,
            code="invalid_state",
        ) from None
    return _xml_response(xml, f"invoice-{invoice.friendly_id}-{syntax}.xml")


def credit_note_einvoice_response(note: CreditNote, syntax: str) -> HttpResponse:
    _check_syntax(syntax)
    try:
        xml = credit_note_xml(note, syntax)
    except EInvoiceUnavailable as exc:
        raise ApiError(
            f"Credit note {note.pk}: {exc}",
            status_code=status.HTTP_409_CONFLICT,
            code="invalid_state",
        ) from None
    return _xml_response(xml, f"credit-note-{note.number}-{syntax}.xml")


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


def _schema(
    what: str, summary: str, description: str, not_found: str, conflict: str
) -> dict[str, Any]:
    return {
        "summary": summary,
        "description": description,
        "parameters": _parameters(what),
        "responses": _responses(not_found, conflict),
    }


def _parameters(what: str) -> list:
    return [
        OpenApiParameter("format", exclude=True),
        OpenApiParameter("id", int, OpenApiParameter.PATH, description=f"The {what} id."),
        OpenApiParameter(
            "syntax",
            str,
            OpenApiParameter.QUERY,
            required=False,
            enum=list(SYNTAXES),
            default="ubl",
            description="; ".join(f"`{key}`: {label}" for key, label in SYNTAXES.items()),
        ),
    ]


def _responses(not_found: str, conflict: str) -> dict:
    return {
        # The XML is served as `application/xml`; generated clients read it as bytes.
        (200, "application/octet-stream"): OpenApiResponse(
            OpenApiTypes.BINARY, description="The e-invoice (UTF-8 XML)."
        ),
        (200, "application/xml"): OpenApiResponse(
            OpenApiTypes.STR, description="The e-invoice (UTF-8 XML)."
        ),
        # Errors are JSON, whatever the Accept header asked for.
        (400, "application/json"): _error("`syntax` is neither `ubl` nor `cii`."),
        (401, "application/json"): _error("Missing, unknown, revoked or expired API key."),
        (404, "application/json"): _error(not_found),
        (409, "application/json"): _error(conflict),
    }


SCHEMA = _schema(
    "invoice",
    "Get an invoice as an EN 16931 e-invoice",
    "The issued invoice as XML, built from what was frozen at issue: UBL 2.1 "
    "(Peppol BIS Billing 3.0) or CII (the XML embedded in the invoice's Factur-X PDF). "
    "Both follow EN 16931 and pass its business rules.",
    "No such invoice (or not visible to this key).",
    "The invoice is a draft (or was issued without country codes).",
)

CREDIT_NOTE_SCHEMA = _schema(
    "credit note",
    "Get a credit note as an EN 16931 e-invoice",
    "The credit note as XML (document type 381), built from its frozen data and "
    "referring to the invoice it credits: a UBL 2.1 `CreditNote` (Peppol BIS Billing 3.0) "
    "or CII (the XML embedded in the credit note's Factur-X PDF). Both follow EN 16931 "
    "and pass its business rules.",
    "No such credit note (or not visible to this key).",
    "The credited invoice was issued without country codes.",
)
