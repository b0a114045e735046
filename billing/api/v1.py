"""The conventions every /v1 view shares: Bearer keys, JSON with Decimal money, one error shape.

    class UsageReportView(V1APIMixin, APIView): ...
    class UsageIngestView(IdempotencyMixin, V1APIMixin, APIView): ...   # POSTs replayable

The error handler is set here, per view, rather than in REST_FRAMEWORK:
the 3scale API under /api answers with 3scale's own error bodies.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import UnsupportedMediaType
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer

from billing.api.authentication import BearerKeyAuthentication
from billing.api.errors import v1_exception_handler
from billing.api.parsers import DecimalJSONParser
from billing.api.permissions import HasApiKey, WriteScopeForUnsafe
from billing.api.renderers import DecimalJSONRenderer

if TYPE_CHECKING:
    from rest_framework.permissions import _PermissionClass

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class V1APIMixin:
    authentication_classes: Sequence[type[BaseAuthentication]] = [BearerKeyAuthentication]
    permission_classes: Sequence[_PermissionClass] = [HasApiKey, WriteScopeForUnsafe]
    renderer_classes: Sequence[type[BaseRenderer]] = [DecimalJSONRenderer]
    parser_classes: Sequence[type[BaseParser]] = [DecimalJSONParser]

    def get_exception_handler(self):
        return v1_exception_handler

    def initial(self, request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        if request.method in _BODY_METHODS:
            # Read the raw body first (it is cached for the parser and for
            # idempotency fingerprints); too large a body raises here -> 413.
            body = request._request.body
            # Without a Content-Type the REST framework would silently see an
            # empty body; a body must say it is JSON.
            if body.strip() and not request.content_type:
                raise UnsupportedMediaType(
                    "", detail="Send the body as Content-Type: application/json."
                )
            # Parse now, so a malformed or non-JSON body is refused before any
            # work (or any idempotency claim) starts.
            request.data  # noqa: B018
