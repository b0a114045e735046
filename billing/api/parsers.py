"""The JSON request body of both APIs: numbers as Decimal, bounded depth, UTF-8.

`DecimalJSONParser` reads the body that `billing.api.body` let through (its
size is already bounded) with `billing.api.body.read_json`: fractions become
Decimal, never float; a document nested too deeply, not UTF-8 or not JSON is
a ParseError (400) that says which.

Text that cannot be stored (a NUL character, a lone surrogate) is a
ValidationError naming the field, which each API answers in its format (/v1
400, 3scale 422).

The 3scale views take only an object and refuse NaN and Infinity as
malformed JSON (`require_object`, `allow_constants`); /v1 passes any document
to its serializers, which refuse NaN with a message naming the field.
"""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import BaseParser

from billing.api.body import BodyError, BodyTextError, read_json


class DecimalJSONParser(BaseParser):
    """application/json; numbers with a fraction or exponent are read as Decimal."""

    media_type = "application/json"
    require_object = False
    allow_constants = True

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        raw = stream.read() if stream is not None else b""
        try:
            data = read_json(raw, allow_constants=self.allow_constants)
        except BodyTextError as exc:
            raise ValidationError(self.text_errors(exc.errors)) from None
        except BodyError as exc:
            raise ParseError(str(exc)) from None
        if data is None:
            return {}
        if self.require_object and not isinstance(data, dict):
            raise ParseError("Malformed JSON request body: it must be an object.")
        return data

    def text_errors(self, errors: dict[str, list[str]]) -> dict[str, list[str]]:
        """The field errors for text that cannot be stored, keyed by the field's path."""
        return errors
