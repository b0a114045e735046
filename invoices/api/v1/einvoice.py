"""GET /v1/invoices/{id}/einvoice?syntax=ubl|cii: an issued invoice as EN 16931 XML."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import status
from rest_framework.renderers import BaseRenderer

from billing.api.errors import ApiError, ErrorSerializer
from billing.api.renderers import DecimalJSONRenderer
from invoices.einvoice import EInvoiceUnavailable, einvoice_xml
from invoices.models import Invoice

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


def einvoice_response(invoice: Invoice, syntax: str) -> HttpResponse:
    if syntax not in SYNTAXES:
        raise ApiError(
            "The request has invalid fields; see details.",
            code="validation_error",
            details={"syntax": [f"must be one of: {', '.join(SYNTAXES)}"]},
        )
    try:
        xml = einvoice_xml(invoice, syntax)
    except EInvoiceUnavailable as exc:
        raise ApiError(
            f"Invoice {invoice.pk} is {invoice.state}: {exc}",
            status_code=status.HTTP_409_CONFLICT,
            code="invalid_state",
        ) from None
    response = HttpResponse(xml, content_type="application/xml; charset=utf-8")
    filename = f"invoice-{invoice.friendly_id}-{syntax}.xml"
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    return response


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


SCHEMA: dict[str, Any] = {
    "summary": "Get an invoice as an EN 16931 e-invoice",
    "description": (
        "The issued invoice as XML, built from what was frozen at issue: UBL 2.1 "
        "(Peppol BIS Billing 3.0) or CII (the XML embedded in the invoice's Factur-X PDF). "
        "Both follow EN 16931 and pass its business rules."
    ),
    "parameters": [
        OpenApiParameter("format", exclude=True),
        OpenApiParameter("id", int, OpenApiParameter.PATH, description="The invoice id."),
        OpenApiParameter(
            "syntax",
            str,
            OpenApiParameter.QUERY,
            required=False,
            enum=list(SYNTAXES),
            default="ubl",
            description="; ".join(f"`{key}`: {label}" for key, label in SYNTAXES.items()),
        ),
    ],
    "responses": {
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
        (404, "application/json"): _error("No such invoice (or not visible to this key)."),
        (409, "application/json"): _error(
            "The invoice is a draft (or was issued without country codes)."
        ),
    },
}
