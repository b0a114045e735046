"""Request parsers of the usage API: JSON (one record or an array) and JSON Lines.

orjson keeps parsing out of the way of the ingestion rate. It reads JSON
numbers as binary floats, so the record validator only accepts a float cost
whose digits survive the round trip (see usage.validation.parse_cost).

orjson refuses a string with a lone surrogate escape (`"\\ud800"`) as invalid
JSON; such a body is read again by the standard library, which keeps the
surrogate, so the record validator can name the record and field it is in.
"""

from __future__ import annotations

import json

import orjson
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser


def _loads(data: bytes | str) -> object:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if "surrogate" not in str(exc):
            raise
        try:
            return json.loads(data)
        except (ValueError, RecursionError):
            raise exc from None


class OrjsonParser(BaseParser):
    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        data = stream.read() if stream is not None else b""
        try:
            return _loads(data)
        except orjson.JSONDecodeError as exc:
            raise ParseError(f"The body is not valid JSON: {exc}") from None


class JsonLinesParser(BaseParser):
    """One JSON object per line; blank lines are ignored."""

    media_type = "application/x-ndjson"

    def parse(self, stream, media_type=None, parser_context=None):
        data = stream.read() if stream is not None else b""
        records = []
        for number, line in enumerate(data.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append(_loads(line))
            except orjson.JSONDecodeError as exc:
                raise ParseError(f"Line {number} is not valid JSON: {exc}") from None
        return records


class JsonlParser(JsonLinesParser):
    media_type = "application/jsonl"
