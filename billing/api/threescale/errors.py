"""3scale's error answers, in JSON and XML.

| situation                          | status | JSON                        | XML                          |
| no, bad, revoked or expired key     | 403    | {"error":"Access denied"}   | <error>Access denied</error> |
| read key writing, wrong key kind    | 403    | {"error":"<message>"}       | <error>message</error>       |
| not found                           | 404    | {"status":"Not found"}      | empty body                   |
| validation, transition, charge      | 422    | {"errors":{"field":[msg]}}  | <errors><error>Full msg</error></errors> |
| missing required parameter          | 400    | text/plain                                                 |
| unknown format                      | 406    | text/plain                                                 |

A view lists the domain errors it answers with 422 in `field_errors` (each
carries `field` and `message`). A lost database is left to
`billing.api.errors.DatabaseUnavailableMiddleware`, which answers 503 in this
format.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response

from billing.api.threescale.renderers import Document, PlainText
from billing.api.threescale.xml import Element

ACCESS_DENIED = "Access denied"
UNKNOWN_FORMAT = "The server does not understand the requested format"


class MissingParameter(exceptions.APIException):
    """Rails' ActionController::ParameterMissing: 400, text/plain."""

    status_code = 400

    def __init__(self, name: str) -> None:
        super().__init__(detail=f"Required parameter missing: {name}")


class Unprocessable(exceptions.APIException):
    """422 with 3scale's `errors` body; `errors` maps a field (or "base") to messages."""

    status_code = 422

    def __init__(self, errors: dict[str, list[str]], *, status_code: int = 422) -> None:
        super().__init__(detail="Unprocessable")
        self.errors = errors
        self.status_code = status_code

    @classmethod
    def on(cls, field: str, message: str, *, status_code: int = 422) -> Unprocessable:
        return cls({field: [message]}, status_code=status_code)


def humanize(field: str) -> str:
    """Rails' human_attribute_name: `friendly_id` -> `Friendly`, `cost_without_vat` -> `Cost without vat`."""
    name = field[:-3] if field.endswith("_id") else field
    name = name.replace("_", " ").strip()
    return name[:1].upper() + name[1:]


def errors_document(errors: dict[str, list[str]]) -> Document:
    messages = []
    for field, items in errors.items():
        for message in items:
            messages.append(message if field == "base" else f"{humanize(field)} {message}")
    xml = Element("errors", children=[Element("error", message) for message in messages])
    return Document(json={"errors": errors}, xml=xml)


def error_document(message: str) -> Document:
    return Document(json={"error": message}, xml=Element("error", message))


def not_found_document() -> Document:
    return Document(json={"status": "Not found"}, xml=None)


def _validation_errors(exc: DjangoValidationError) -> dict[str, list[str]]:
    if hasattr(exc, "error_dict"):
        return {
            ("base" if field == "__all__" else field): [str(m) for m in messages]
            for field, messages in exc.message_dict.items()
        }
    return {"base": [str(m) for m in exc.messages]}


def _drf_validation_errors(detail) -> dict[str, list[str]]:
    if isinstance(detail, dict):
        return {
            str(field): [str(m) for m in (messages if isinstance(messages, list) else [messages])]
            for field, messages in detail.items()
        }
    if isinstance(detail, list):
        return {"base": [str(m) for m in detail]}
    return {"base": [str(detail)]}


def threescale_exception_handler(exc: Exception, context: dict) -> Response | None:
    headers: dict[str, str] = {}
    if isinstance(exc, MissingParameter):
        return Response(
            PlainText(str(exc.detail)), status=400, content_type="text/plain; charset=utf-8"
        )
    if isinstance(exc, Unprocessable):
        return Response(errors_document(exc.errors), status=exc.status_code)
    view = context.get("view")
    if isinstance(exc, getattr(view, "field_errors", ())):
        field, message = getattr(exc, "field", "base"), getattr(exc, "message", str(exc))
        return Response(errors_document({field: [message]}), status=422)
    if isinstance(exc, DjangoValidationError):
        return Response(errors_document(_validation_errors(exc)), status=422)
    if isinstance(exc, exceptions.ValidationError):
        return Response(errors_document(_drf_validation_errors(exc.detail)), status=422)
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        return Response(error_document(ACCESS_DENIED), status=403)
    if isinstance(exc, exceptions.PermissionDenied):
        return Response(error_document(str(exc.detail)), status=403)
    if isinstance(exc, DjangoPermissionDenied):
        return Response(error_document(ACCESS_DENIED), status=403)
    if isinstance(exc, (exceptions.NotFound, Http404)):
        return Response(not_found_document(), status=404)
    if isinstance(exc, exceptions.NotAcceptable):
        return Response(
            PlainText(UNKNOWN_FORMAT), status=406, content_type="text/plain; charset=utf-8"
        )
    if isinstance(exc, DatabaseError):
        return None  # a lost database: DatabaseUnavailableMiddleware answers 503
    if isinstance(exc, exceptions.APIException):
        if isinstance(exc, exceptions.MethodNotAllowed):
            allowed = view.allowed_methods if view else []
            headers["Allow"] = ", ".join(allowed)
        wait = getattr(exc, "wait", None)
        if wait:
            headers["Retry-After"] = str(int(wait))
        return Response(error_document(str(exc.detail)), status=exc.status_code, headers=headers)
    return None
