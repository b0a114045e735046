"""Request parsers of the usage API: JSON (one record or an array) and JSON Lines.

orjson keeps parsing out of the way of the ingestion rate. It reads JSON
numbers as binary floats, so the record validator only accepts a float cost
whose digits survive the round trip (see usage.validation.parse_cost).
"""

from __future__ import annotations

import orjson
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser


class OrjsonParser(BaseParser):
    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        data = stream.read() if stream is not None else b""
        try:
            return orjson.loads(data)
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
                records.append(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                raise ParseError(f"Line {number} is not valid JSON: {exc}") from None
        return records


class JsonlParser(JsonLinesParser):
    media_type = "application/jsonl"
