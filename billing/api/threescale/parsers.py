"""The 3scale request bodies: a JSON object with exact decimals, and XML through defusedxml."""

from __future__ import annotations

import re
from typing import Any

from defusedxml import ElementTree as SafeElementTree
from defusedxml.common import DefusedXmlException
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser

from billing.api.parsers import DecimalJSONParser

MAX_XML_DEPTH = 8


class ThreeScaleJSONParser(DecimalJSONParser):
    """3scale takes a JSON object, and NaN or Infinity is malformed JSON (Rails' parser)."""

    require_object = True
    allow_constants = False

    def text_errors(self, errors: dict[str, list[str]]) -> dict[str, list[str]]:
        # 3scale names a parameter by itself: `name`, whether sent bare or
        # wrapped as {"line_item": {"name": ...}}.
        named: dict[str, list[str]] = {}
        for path, messages in errors.items():
            leaf = re.sub(r"\[\d+\]$", "", path).rsplit(".", 1)[-1] or "base"
            named.setdefault(leaf, []).extend(messages)
        return named


class SafeXMLParser(BaseParser):
    """`<invoice><period>2026-01</period></invoice>` -> {"invoice": {"period": "2026-01"}}.

    defusedxml refuses entity expansion and external references, so a
    hostile document cannot blow up memory or read local files.
    """

    media_type = "application/xml"

    def parse(self, stream, media_type=None, parser_context=None) -> dict[str, Any]:
        raw = stream.read() if stream is not None else b""
        if not raw.strip():
            return {}
        try:
            root = SafeElementTree.fromstring(raw)
        except (SafeElementTree.ParseError, DefusedXmlException, ValueError) as exc:
            raise ParseError(f"Malformed XML request body: {exc}") from None
        return {root.tag: _element_value(root, 1)}


class TextXMLParser(SafeXMLParser):
    media_type = "text/xml"


def _element_value(element, depth: int) -> Any:
    children = list(element)
    if not children:
        return (element.text or "").strip()
    if depth >= MAX_XML_DEPTH:
        raise ParseError("The XML request body is nested too deeply.")
    return {child.tag: _element_value(child, depth + 1) for child in children}
