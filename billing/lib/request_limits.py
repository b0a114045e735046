"""Refuse oversized /v1 request bodies before anything reads them.

Django itself only notices a body over DATA_UPLOAD_MAX_MEMORY_SIZE when a
view reads it, and then answers 400. Checking the declared Content-Length up
front answers 413 in the /v1 error shape without reading the body at all; a
body without a Content-Length (chunked) is still capped by Django when it is
read, which the /v1 error handler maps to the same 413.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from billing.lib.api_errors import error_body, payload_too_large_message

V1_PREFIX = "/v1/"


def _json_error(status: int, code: str, message: str) -> HttpResponse:
    return HttpResponse(
        json.dumps(error_body(code, message)), status=status, content_type="application/json"
    )


class RequestBodyLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith(V1_PREFIX):
            refusal = self._check(request)
            if refusal is not None:
                return refusal
        return self.get_response(request)

    @staticmethod
    def _check(request: HttpRequest) -> HttpResponse | None:
        declared = request.META.get("CONTENT_LENGTH") or ""
        if not declared.strip():
            return None
        try:
            length = int(declared)
        except ValueError:
            length = -1
        if length < 0:
            return _json_error(400, "bad_request", "Content-Length must be a non-negative integer.")
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and length > limit:
            return _json_error(413, "payload_too_large", payload_too_large_message(limit))
        return None
