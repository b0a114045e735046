"""The plumbing every 3scale endpoint shares: credentials, formats, errors, conditional GET."""

from __future__ import annotations

import hashlib
from typing import cast

from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from django.http.request import RawPostDataException
from django.utils.cache import get_conditional_response, patch_vary_headers
from django.utils.http import http_date
from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.viewsets import ViewSet

import billing.api.openapi  # noqa: F401  (documents the authentication)
from billing.api.authentication import ApiKeyPrincipal, ThreeScaleKeyAuthentication
from billing.api.body import BodyError, read_json
from billing.api.permissions import HasApiKey, WriteScopeForUnsafe, request_api_key
from billing.api.threescale.errors import threescale_exception_handler
from billing.api.threescale.parsers import SafeXMLParser, TextXMLParser, ThreeScaleJSONParser
from billing.api.threescale.renderers import (
    Document,
    ThreeScaleJSONRenderer,
    ThreeScaleXMLRenderer,
)
from billing.api.threescale.schema import ThreeScaleAutoSchema

MAX_CREDENTIAL_BODY_BYTES = 64 * 1024


class ThreeScaleRequestAuthentication(ThreeScaleKeyAuthentication):
    """Also finds `access_token` / `provider_key` at the top of a JSON body.

    The body is read leniently here: a malformed one simply carries no
    credential, and the parser reports it later as a 400 (after the key
    check), instead of this check turning it into a 500.
    """

    @staticmethod
    def _credential(request) -> str | None:
        found = ThreeScaleKeyAuthentication._credential(request)
        if found is not None:
            return found
        if not (request.content_type or "").startswith("application/json"):
            return None
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return None
        if not 0 < length <= MAX_CREDENTIAL_BODY_BYTES:
            return None
        try:
            # The one body reader: bounded depth, so `[[[[...` is no credential
            # (and the parser's 400 after the key check), never a RecursionError.
            data = read_json(request._request.body, check_text=False)
        except (RawPostDataException, RequestDataTooBig, BodyError):
            return None
        if not isinstance(data, dict):
            return None
        for name in ("access_token", "provider_key"):
            value = data.get(name)
            if isinstance(value, str) and value:
                return value
        return None


class ThreeScaleContentNegotiation(DefaultContentNegotiation):
    """An unknown suffix (`.csv`, `.html`) is 406, as in Rails, not DRF's 404."""

    def select_renderer(self, request, renderers, format_suffix=None):
        # A suffix decides on its own, whatever Accept says (Rails does the same).
        override = request.query_params.get(self.settings.URL_FORMAT_OVERRIDE)
        known = {renderer.format for renderer in renderers}
        if override is not None and override not in known:
            # `?format=AAA` is refused even when a suffix decides the format.
            raise NotAcceptable()
        fmt = format_suffix or override
        if fmt:
            for renderer in renderers:
                if renderer.format == fmt:
                    return renderer, renderer.media_type
            raise NotAcceptable()
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except Http404:
            raise NotAcceptable() from None


def _keep_content_type(response):
    """DRF drops Content-Type from an empty body; Rails' `head :not_found` keeps the
    format's type (`application/xml` for the XML 404), and clients dispatch on it."""
    renderer = getattr(response, "accepted_renderer", None)
    if (
        "Content-Type" not in response
        and renderer is not None
        and response.status_code not in (204, 304)
    ):
        response["Content-Type"] = f"{renderer.media_type}; charset={renderer.charset}"
    return None


class ThreeScaleViewSet(ViewSet):
    """Base of every /api and /admin/api view: a write key to change, any valid key to read."""

    authentication_classes = [ThreeScaleRequestAuthentication]
    permission_classes = [HasApiKey, WriteScopeForUnsafe]
    # XML first: with no suffix and `Accept: */*` (or none), 3scale answers XML.
    renderer_classes = [ThreeScaleXMLRenderer, ThreeScaleJSONRenderer]
    parser_classes = [
        ThreeScaleJSONParser,
        FormParser,
        MultiPartParser,
        SafeXMLParser,
        TextXMLParser,
    ]
    content_negotiation_class = ThreeScaleContentNegotiation
    schema = ThreeScaleAutoSchema()

    def get_exception_handler(self):
        return threescale_exception_handler

    @property
    def api_key(self):
        return request_api_key(self.request)

    @property
    def actor(self) -> str:
        return cast(ApiKeyPrincipal, self.request.user).actor

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        patch_vary_headers(response, ("Accept",))
        if hasattr(response, "add_post_render_callback"):
            response.add_post_render_callback(_keep_content_type)
        if (
            request.method in ("GET", "HEAD")
            and response.status_code == 200
            and isinstance(getattr(response, "data", None), Document)
        ):
            return self._conditional(request, response)
        return response

    @staticmethod
    def _conditional(request, response):
        response.render()
        return conditional_response(request._request, response, response.data.last_modified)


def conditional_response(django_request, response, last_modified):
    """ETag from the exact bytes sent (so it follows format and content), and
    Last-Modified from the resource's updated_at; 304 when the client is current.
    `response` is rendered (its content is what is sent)."""
    digest = hashlib.sha256(response["Content-Type"].encode() + b"\0" + response.content)
    etag = f'"{digest.hexdigest()[:40]}"'
    response["ETag"] = etag
    timestamp = None
    if last_modified is not None:
        timestamp = int(last_modified.timestamp())
        response["Last-Modified"] = http_date(timestamp)
    return get_conditional_response(
        django_request, etag=etag, last_modified=timestamp, response=response
    )
