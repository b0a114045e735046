"""The request body of both APIs: one reader with size, depth and encoding limits.

- Size: `RequestBodyLimitMiddleware` refuses a body whose declared
  Content-Length is over MAX_REQUEST_BYTES (DATA_UPLOAD_MAX_MEMORY_SIZE) with
  413, before anything reads it. Django only notices an oversized body when
  `request.body` is read, and the REST framework's parsers read the stream
  directly, so the check has to come first.
- Depth and encoding: `read_json` decodes UTF-8 and parses with every
  fraction as Decimal; a document nested deeper than `json_codec.MAX_DEPTH`,
  not UTF-8 or not JSON raises BodyError with a message for the client.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from billing.api.errors import error_body, payload_too_large_message
from billing.lib import json_codec

V1_PREFIX = "/v1/"


class BodyError(ValueError):
    """The body cannot be read as the document it claims to be; the message says why."""


def _refuse_constant(name: str):
    raise BodyError(f"Malformed JSON request body: {name} is not valid JSON.")


def read_json(raw: bytes | str, *, allow_constants: bool = True) -> Any:
    """The JSON document in `raw` (None when the body is blank), fractions as Decimal."""
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise BodyError("The request body is not valid UTF-8.") from None
    else:
        text = raw
    if not text.strip():
        return None
    try:
        if allow_constants:
            return json_codec.loads(text)
        return _loads_without_constants(text)
    except json_codec.JSONTooDeep:
        raise BodyError(
            f"Malformed JSON request body: nested deeper than {json_codec.MAX_DEPTH} levels."
        ) from None
    except BodyError:
        raise
    except ValueError as exc:
        raise BodyError(f"Malformed JSON request body: {exc}") from None


def _loads_without_constants(text: str) -> Any:
    from decimal import Decimal

    try:
        data = json.loads(text, parse_float=Decimal, parse_constant=_refuse_constant)
    except RecursionError:
        raise json_codec.JSONTooDeep() from None
    if json_codec.depth_exceeds(data, json_codec.MAX_DEPTH):
        raise json_codec.JSONTooDeep()
    return data


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
