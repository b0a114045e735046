"""The request body of both APIs: one reader with size, depth and encoding limits.

- Size: `RequestBodyLimitMiddleware` refuses, on `/v1`, `/api` and
  `/admin/api`, a body whose declared Content-Length is over MAX_REQUEST_BYTES
  (DATA_UPLOAD_MAX_MEMORY_SIZE) with 413 in the API's format, before anything
  reads it. Django only notices an oversized body when `request.body` is
  read, and the REST framework's parsers read the stream directly, so the
  check has to come first.
- Framing: a body sent with `Transfer-Encoding` (chunked) has no
  Content-Length, and Django would read it as empty: the views would act on
  a body nobody read. Such a request is refused with 411 Length Required, on
  every path.
- Depth, encoding and text: `read_json` decodes UTF-8 and parses with every
  fraction as Decimal; a document nested deeper than `json_codec.MAX_DEPTH`,
  not UTF-8 or not JSON raises BodyError with a message for the client, and
  text that cannot be stored (a NUL character, a lone surrogate) raises
  BodyTextError naming each field.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from billing.api.errors import api_error_response, api_of, payload_too_large_message
from billing.api.parsing import bad_text
from billing.lib import json_codec


class BodyError(ValueError):
    """The body cannot be read as the document it claims to be; the message says why."""


class BodyTextError(BodyError):
    """Text in the body that cannot be stored; `errors` maps each field path to why."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("The request body has text that cannot be stored.")
        self.errors = errors


def _refuse_constant(name: str):
    raise BodyError(f"Malformed JSON request body: {name} is not valid JSON.")


def read_json(raw: bytes | str, *, allow_constants: bool = True, check_text: bool = True) -> Any:
    """The JSON document in `raw` (None when the body is blank), fractions as Decimal."""
    data = _read_json(raw, allow_constants=allow_constants)
    if check_text:
        errors: dict[str, list[str]] = {}
        for path, problem in bad_text(data):
            errors.setdefault(path, []).append(problem)
        if errors:
            raise BodyTextError(dict(sorted(errors.items())))
    return data


def _read_json(raw: bytes | str, *, allow_constants: bool) -> Any:
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
        return json_codec.loads(text, parse_constant=_refuse_constant)
    except json_codec.JSONTooDeep:
        raise BodyError(
            f"Malformed JSON request body: nested deeper than {json_codec.MAX_DEPTH} levels."
        ) from None
    except BodyError:
        raise
    except json.JSONDecodeError as exc:
        raise BodyError(
            f"Malformed JSON request body: {exc.msg} (line {exc.lineno}, column {exc.colno})."
        ) from None
    except ValueError:
        raise BodyError("Malformed JSON request body.") from None


class RequestBodyLimitMiddleware:
    """413 for a declared body over the limit on the API paths; 411 for a chunked body."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        refusal = self._check(request)
        if refusal is not None:
            return refusal
        return self.get_response(request)

    @staticmethod
    def _check(request: HttpRequest) -> HttpResponse | None:
        framing = request.META.get("HTTP_TRANSFER_ENCODING", "").strip().lower()
        if framing and framing != "identity":
            message = "Send the body with a Content-Length (Transfer-Encoding is not accepted)."
            return _refusal(request, 411, message)
        if api_of(request.path_info) is None:
            return None  # Django's own limit applies when a form is read
        declared = request.META.get("CONTENT_LENGTH") or ""
        if not declared.strip():
            return None
        declared = declared.strip()
        if not (declared.isascii() and declared.isdigit()) or len(declared) > 19:
            return _refusal(request, 400, "Content-Length must be a non-negative integer.")
        length = int(declared)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and length > limit:
            return _refusal(request, 413, payload_too_large_message(limit))
        return None


def _refusal(request: HttpRequest, status: int, message: str) -> HttpResponse:
    response = api_error_response(request, status, message)
    if response is None:
        response = HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
    return response
