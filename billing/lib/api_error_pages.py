"""Error answers in the caller's own format, for errors no API view wrote.

Django answers some requests before (or instead of) any view: a URL that
routes nowhere (404), a refused host (400), a crash (500). Its pages are
HTML, which no API client can parse. This middleware rewrites those pages,
on the API paths only, into the error format of the API the client speaks:

- `/v1/...`: `{"error": {"code": "not_found", "message": "..."}}`
- `/api/...`, `/admin/api/...` (3scale): `{"status":"Not found"}` / an empty
  XML 404, and `{"error":"..."}` / `<error>...</error>` for anything else,
  in JSON or XML by the same rules as the 3scale views (suffix, `format`,
  then `Accept`, XML by default).

Answers written by the API views themselves are never touched: they are not
HTML.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from http import HTTPStatus

from django.http import HttpRequest, HttpResponse

V1_PREFIX = "/v1/"
THREESCALE_PREFIXES = ("/api/", "/admin/api/")
# The schema and its readers live under /api/ but are documents, not the 3scale API.
NOT_THREESCALE = ("/api/schema/", "/api/docs/", "/api/redoc/")

V1_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
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
            "code": V1_CODES.get(status, "error"),
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


def _is_html_page(response: HttpResponse) -> bool:
    return response.get("Content-Type", "").startswith("text/html")


class ApiErrorPageMiddleware:
    """Replace Django's HTML error pages on API paths with the API's own error body."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code < 400 or not _is_html_page(response):
            return response
        replacement = api_error_response(request, response.status_code)
        if replacement is None:
            return response
        for header in ("Retry-After", "Allow", "WWW-Authenticate"):
            if header in response:
                replacement[header] = response[header]
        return replacement
