"""Errors of both APIs: one status-code table, each API's error body, one 503 path.

/v1 answers every error as

    {"error": {"code": "validation_error", "message": "...", "details": {"field": ["..."]}}}

where `code` is stable and machine-readable, `message` is for people and
`details` names each bad field. The 3scale API (`/api`, `/admin/api`) answers
with 3scale's bodies (`billing.api.threescale.errors`): `{"status":"Not found"}`
or an empty XML 404, `{"error":"..."}` / `<error>...</error>` otherwise.

Django answers some requests before (or instead of) any view: a URL that
routes nowhere (404), a refused host (400), a crash (500). `handler400`,
`handler403`, `handler404` and `handler500` below answer those in the format of
the API the path belongs to, and with Django's own pages elsewhere.

A lost database (OperationalError, InterfaceError) is a 503 with
`Retry-After` that the client can retry, never a 500 with a stack trace:
`unavailable_response` is the one answer, in the API's format on API paths
and a short page elsewhere. The API exception handlers leave these errors
to `DatabaseUnavailableMiddleware`, which answers a view's error with one
warning line; an error raised outside a view (a middleware saving the
session, say) reaches `handler500`, which answers the same 503. Nothing
partial is written: the database rolls the failed transaction back, and with
CONN_HEALTH_CHECKS Django opens a fresh connection once the database is back.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from django.views import defaults
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response

logger = logging.getLogger("billing.db")

# The /v1 error code of each HTTP status (3scale bodies carry no code).
STATUS_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    402: "payment_failed",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    411: "length_required",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "throttled",
    500: "internal_error",
    503: "service_unavailable",
}
V1_MESSAGES = {
    400: "The request could not be understood.",
    403: "This request is not allowed.",
    404: "No such resource: check the URL.",
    500: "The server failed to answer; the request was not completed.",
    503: "The service is temporarily unavailable; retry shortly.",
}
THREESCALE_MESSAGES = {403: "Access denied", 503: "Service temporarily unavailable"}
RETRY_AFTER_SECONDS = 5


class ApiError(exceptions.APIException):
    """Raise from a /v1 view to answer with a given status, code and message."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int = status.HTTP_400_BAD_REQUEST,
        code: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail=message)
        self.status_code = status_code
        self.error_code = code or STATUS_CODES.get(status_code, "error")
        self.details = details


def payload_too_large_message(limit: int) -> str:
    return f"The request body is larger than the limit of {limit} bytes."


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    return {"error": body}


def field_errors(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """Flatten nested validation errors into `{"line_items[1].price": ["..."]}`.

    Clients get one flat map from a field path to its messages, however deep
    the field sits in the request.
    """
    errors: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            if isinstance(key, int):  # the items of a list field
                path = f"{prefix}[{key}]"
            elif key == "non_field_errors" and prefix:
                path = prefix  # about the field as a whole
            else:
                path = f"{prefix}.{key}" if prefix else str(key)
            for sub_path, messages in field_errors(value, path).items():
                errors.setdefault(sub_path, []).extend(messages)
    elif isinstance(detail, list):
        for index, value in enumerate(detail):
            if isinstance(value, (dict, list)):
                if value:
                    for sub_path, messages in field_errors(value, f"{prefix}[{index}]").items():
                        errors.setdefault(sub_path, []).extend(messages)
            else:
                errors.setdefault(prefix or "non_field_errors", []).append(str(value))
    else:
        errors.setdefault(prefix or "non_field_errors", []).append(str(detail))
    return errors


def v1_exception_handler(exc: Exception, context: dict) -> Response | None:
    headers: dict[str, str] = {}
    if isinstance(exc, ApiError):
        status_code, code, message, details = (
            exc.status_code,
            exc.error_code,
            str(exc.detail),
            exc.details,
        )
    elif isinstance(exc, exceptions.ValidationError):
        status_code, code = 400, "validation_error"
        message = "The request has invalid fields; see details."
        details = field_errors(exc.detail)
    elif isinstance(exc, RequestDataTooBig):
        from django.conf import settings

        status_code, code, details = 413, "payload_too_large", None
        message = payload_too_large_message(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
    elif isinstance(exc, exceptions.ParseError):
        status_code, code, message, details = 400, "malformed_request", str(exc.detail), None
    elif isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        status_code, code, details = 401, "unauthenticated", None
        message = (
            "Missing API key: send Authorization: Bearer <key>."
            if isinstance(exc, exceptions.NotAuthenticated)
            else str(exc.detail)
        )
        headers["WWW-Authenticate"] = 'Bearer realm="billing"'
    elif isinstance(exc, (exceptions.PermissionDenied, DjangoPermissionDenied)):
        status_code, code, details = 403, "forbidden", None
        message = "This API key is not allowed to do this (a read key cannot write)."
    elif isinstance(exc, (exceptions.NotFound, Http404)):
        status_code, code, details = 404, "not_found", None
        message = str(exc.detail) if isinstance(exc, exceptions.NotFound) else "Not found."
    elif isinstance(exc, DatabaseError):
        # A lost database is answered by DatabaseUnavailableMiddleware (503).
        return None
    elif isinstance(exc, exceptions.APIException):
        status_code = exc.status_code
        code = STATUS_CODES.get(status_code, "error")
        message, details = str(exc.detail), None
        auth_header = getattr(exc, "auth_header", None)
        if auth_header:
            headers["WWW-Authenticate"] = auth_header
        wait = getattr(exc, "wait", None)
        if wait:
            headers["Retry-After"] = str(int(wait))
    else:
        return None
    return Response(error_body(code, message, details), status=status_code, headers=headers)


# --- error pages of the API paths ------------------------------------------------

V1_PREFIX = "/v1/"
THREESCALE_PREFIXES = ("/api/", "/admin/api/")
# The schema and its readers live under /api/ but are documents, not the 3scale API.
NOT_THREESCALE = ("/api/schema/", "/api/docs/", "/api/redoc/")


def api_of(path: str) -> str | None:
    """Which API a path belongs to: "v1", "3scale", or None for everything else."""
    if path.startswith(V1_PREFIX):
        return "v1"
    if path.startswith(THREESCALE_PREFIXES) and not path.startswith(NOT_THREESCALE):
        return "3scale"
    return None


def threescale_format(request: HttpRequest) -> str:
    """JSON or XML, as the 3scale views negotiate it: suffix, `format`, Accept, else XML."""
    path = request.path_info
    if path.endswith(".json"):
        return "json"
    if path.endswith(".xml"):
        return "xml"
    requested = request.GET.get("format")
    if requested in ("json", "xml"):
        return requested
    accept = request.headers.get("Accept", "")
    if "json" in accept and "xml" not in accept.split("json", 1)[0]:
        return "json"
    return "xml"


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def v1_error_response(status: int, message: str | None = None) -> HttpResponse:
    body = {
        "error": {
            "code": STATUS_CODES.get(status, "error"),
            "message": message or V1_MESSAGES.get(status) or HTTPStatus(status).phrase,
        }
    }
    return HttpResponse(json.dumps(body), status=status, content_type="application/json")


def threescale_error_response(
    request: HttpRequest, status: int, message: str | None = None
) -> HttpResponse:
    fmt = threescale_format(request)
    if status == 404:
        # 3scale: {"status":"Not found"} in JSON, an empty body in XML.
        if fmt == "json":
            return HttpResponse(
                '{"status":"Not found"}', status=404, content_type="application/json; charset=utf-8"
            )
        return HttpResponse(b"", status=404, content_type="application/xml; charset=utf-8")
    text = message or THREESCALE_MESSAGES.get(status) or HTTPStatus(status).phrase
    if fmt == "json":
        return HttpResponse(
            json.dumps({"error": text}, separators=(",", ":")),
            status=status,
            content_type="application/json; charset=utf-8",
        )
    xml = f'<?xml version="1.0" encoding="UTF-8"?><error>{_xml_escape(text)}</error>'
    return HttpResponse(
        xml.encode("utf-8"), status=status, content_type="application/xml; charset=utf-8"
    )


def api_error_response(
    request: HttpRequest, status: int, message: str | None = None
) -> HttpResponse | None:
    """The error in the format of the API the request is for; None off the API paths."""
    api = api_of(request.path_info)
    if api == "v1":
        return v1_error_response(status, message)
    if api == "3scale":
        return threescale_error_response(request, status, message)
    return None


# --- the database is unavailable: one 503 --------------------------------------

UNAVAILABLE_PAGE = (
    "<!doctype html><html><head><title>Service unavailable</title></head><body>"
    "<h1>Service temporarily unavailable</h1>"
    "<p>The database cannot be reached. Nothing was changed; please try again shortly.</p>"
    "</body></html>"
)


def is_database_unavailable(exc: BaseException | None) -> bool:
    return isinstance(exc, (OperationalError, InterfaceError))


def unavailable_response(request: HttpRequest) -> HttpResponse:
    response = api_error_response(request, 503)
    if response is None:
        response = HttpResponse(UNAVAILABLE_PAGE, status=503, content_type="text/html")
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


class DatabaseUnavailableMiddleware:
    """A view's lost database: 503 with one warning line instead of a traceback."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_database_unavailable(exception):
            return None
        logger.warning(
            "database unavailable (%s) on %s %s: answered 503",
            type(exception).__name__,
            request.method,
            request.path,
        )
        return unavailable_response(request)


# --- Django's error views (billing.urls sets handler400/403/404/500) -----------


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    return api_error_response(request, 400) or defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    return api_error_response(request, 403) or defaults.permission_denied(request, exception)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    return api_error_response(request, 404) or defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    # Django calls this while handling the exception, so it is still current.
    if is_database_unavailable(sys.exc_info()[1]):
        return unavailable_response(request)
    return api_error_response(request, 500) or defaults.server_error(request)


# --- the error shape, for the OpenAPI schema ------------------------------------


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable, machine-readable error code.")
    message = serializers.CharField(help_text="What went wrong, for people.")
    details = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Validation errors: each bad field (or parameter) with its reasons.",
    )


class ErrorSerializer(serializers.Serializer):
    """The body of every /v1 error response."""

    error = ErrorDetailSerializer()
