"""Request parsers of the usage API: JSON (one record or an array) and JSON Lines.

orjson keeps parsing out of the way of the ingestion rate. It reads JSON
numbers as binary floats, so the record validator only accepts a float cost
whose digits survive the round trip (see usage.validation.parse_cost).

orjson refuses a string with a lone surrogate escape (`"\\ud800"`) as invalid
JSON, and would read `1e-400` as 0.0 or refuse `1e400`: a body with a lone
surrogate, or with a number written with an exponent, is read by the API's own
JSON reader instead (numbers as Decimal, surrogates kept), so the record
validator sees exactly what was sent and names the record and field it is in.

Telling whether a number had an exponent costs nothing in the usual case: a
body with no digit followed by "e" has none; otherwise (hex ids such as
"i-00003e5f" are common) orjson's result is used unless one of the records'
values is a float (an exponent can only give a float) or orjson refused the
body. Values nested deeper are refused by the validator whatever their digits.
"""

from __future__ import annotations

import re

import orjson
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser

from billing.api.body import BodyError, read_json

_MAYBE_EXPONENT = re.compile(rb"[0-9][eE]")


def _has_float(document: object) -> bool:
    """A float at the top of the document or among a record's values."""
    if type(document) is float:
        return True
    records = document if type(document) is list else [document]
    for record in records:
        if type(record) is float:
            return True
        if type(record) is dict:
            for value in record.values():
                if type(value) is float:
                    return True
    return False


def _loads(data: bytes) -> object:
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if "surrogate" not in str(exc) and _MAYBE_EXPONENT.search(data) is None:
            raise ValueError(str(exc)) from None
    else:
        if _MAYBE_EXPONENT.search(data) is None or not _has_float(document):
            return document
    try:
        # Surrogates written as UTF-8 bytes are kept too, for the validator to name.
        return read_json(data.decode("utf-8", "surrogatepass"), check_text=False)
    except UnicodeDecodeError:
        raise ValueError("the body is not valid UTF-8") from None
    except BodyError as exc:
        raise ValueError(str(exc)) from None


class OrjsonParser(BaseParser):
    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        data = stream.read() if stream is not None else b""
        try:
            return _loads(data)
        except ValueError as exc:
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
            except ValueError as exc:
                raise ParseError(f"Line {number} is not valid JSON: {exc}") from None
        return records


class JsonlParser(JsonLinesParser):
    media_type = "application/jsonl"
