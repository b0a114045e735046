"""What a 3scale view returns, and the XML and JSON renderers that write it.

A view answers with a `Document` holding both forms of its resource; content
negotiation (suffix, then `Accept`, XML first as 3scale does) picks one.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from rest_framework.renderers import BaseRenderer

from billing.api.threescale.values import dumps
from billing.api.threescale.xml import Element, document


@dataclass
class Document:
    """Both representations of one response; None means an empty body in that format."""

    json: Any = None
    xml: Element | None = None
    last_modified: dt.datetime | None = None


def wants_xml(request) -> bool:
    """Whether the negotiated format is XML (the default when nothing was negotiated)."""
    renderer = getattr(request, "accepted_renderer", None)
    return getattr(renderer, "format", "xml") == "xml"


@dataclass
class PlainText:
    """A text/plain body, whatever format was asked for (3scale's 400 on a missing param)."""

    text: str


class ThreeScaleXMLRenderer(BaseRenderer):
    media_type = "application/xml"
    format = "xml"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        if isinstance(data, PlainText):
            return data.text.encode("utf-8")
        if isinstance(data, Document):
            return b"" if data.xml is None else document(data.xml)
        return b""


class ThreeScaleJSONRenderer(BaseRenderer):
    media_type = "application/json"
    format = "json"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        if isinstance(data, PlainText):
            return data.text.encode("utf-8")
        if isinstance(data, Document):
            if data.json is None:
                return b""
            return dumps(data.json).encode("utf-8", errors="replace")
        return b""
