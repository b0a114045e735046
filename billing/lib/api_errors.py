"""The /v1 error shape, shared by every /v1 endpoint.

    {"error": {"code": "validation_error", "message": "...", "details": {"field": ["..."]}}}

`code` is stable and machine-readable; `message` is for people; `details`
appears for validation errors and names each bad field.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import Http404
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response

_CODES = {
    400: "bad_request",
    402: "payment_failed",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "throttled",
    503: "service_unavailable",
}


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
        self.error_code = code or _CODES.get(status_code, "error")
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
    elif isinstance(exc, (OperationalError, InterfaceError)):
        status_code, code, details = 503, "service_unavailable", None
        message = "The service is temporarily unavailable; retry shortly."
        headers["Retry-After"] = "5"
    elif isinstance(exc, DatabaseError):
        return None
    elif isinstance(exc, exceptions.APIException):
        status_code = exc.status_code
        code = _CODES.get(status_code, "error")
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
