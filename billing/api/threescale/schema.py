"""OpenAPI descriptions shared by every 3scale endpoint: media types, links,
pagination metadata and the error answers (documentation only)."""

from __future__ import annotations

import re

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

XML = "application/xml"
JSON = "application/json"
TEXT = "text/plain"


class ThreeScaleAutoSchema(AutoSchema):
    """The 3scale operations' schema: a suffixed URL (`/api/invoices.json`) takes its
    format from the suffix alone, so only the unsuffixed one declares `?format=`
    (declaring both gives one operation two `format` parameters with different
    enums). JSON is declared before XML in every response, so a generated client
    picks JSON."""

    def _get_format_parameters(self):
        if re.search(r"<drf_format_suffix\w*:\w+>", self.path_regex):
            return []
        return super()._get_format_parameters()

    def map_parsers(self):
        # The server also reads form, multipart and XML bodies, as Rails does
        # (`<invoice><period>2026-03</period></invoice>`). The schema describes
        # JSON only: a generated client sends that, and openapi-python-client
        # cannot generate a working function for an operation with several.
        parsers = super().map_parsers()
        return [JSON] if JSON in parsers else parsers


class ThreeScaleLinkSerializer(serializers.Serializer):
    rel = serializers.CharField()
    href = serializers.URLField()


class ThreeScaleMetadataSerializer(serializers.Serializer):
    per_page = serializers.IntegerField()
    total_entries = serializers.IntegerField()
    total_pages = serializers.IntegerField()
    current_page = serializers.IntegerField()


ErrorSchema = inline_serializer("ThreeScaleError", {"error": serializers.CharField()})
NotFoundSchema = inline_serializer("ThreeScaleNotFound", {"status": serializers.CharField()})
ErrorsSchema = inline_serializer(
    "ThreeScaleErrors",
    {
        "errors": serializers.DictField(
            child=serializers.ListField(child=serializers.CharField()),
            help_text='Messages per field ("base" for the object as a whole).',
        )
    },
)
# <errors><error>Full message</error>…</errors>
ErrorsXMLSchema = inline_serializer(
    "ThreeScaleErrorsXML", {"error": serializers.ListField(child=serializers.CharField())}
)

EMPTY = OpenApiResponse(description="Empty body.")
# For a media-typed answer whose body is empty (3scale's XML 404).
EMPTY_XML = OpenApiResponse(OpenApiTypes.STR, description="Empty body.")
UNKNOWN_FORMAT = OpenApiResponse(
    OpenApiTypes.STR,
    description="Unknown format (only .json and .xml, as a suffix or `format`).",
)


def xml_body(schema) -> OpenApiResponse:
    """The XML representation: the same elements as the JSON keys, one element
    per object (the JSON wrapper key is the XML root element)."""
    return OpenApiResponse(schema, description="The XML representation.")


def responses(status: int, json_schema, *, errors: tuple[int, ...] = (403, 404)) -> dict:
    """A success in both formats plus the 3scale error answers that apply."""
    result: dict = {(status, JSON): json_schema, (status, XML): xml_body(json_schema)}
    # Any 3scale URL answers an unknown format (suffix or `format`) this way.
    result[(406, TEXT)] = UNKNOWN_FORMAT
    for code in errors:
        if code == 400:
            result[(400, "text/plain")] = OpenApiResponse(
                OpenApiTypes.STR, description="Required parameter missing: <name>"
            )
        elif code == 403:
            result[(403, JSON)] = OpenApiResponse(
                ErrorSchema,
                description="Missing, invalid, expired or revoked key, or no write scope.",
            )
            result[(403, XML)] = OpenApiResponse(ErrorSchema, description="<error>…</error>")
        elif code == 404:
            result[(404, JSON)] = OpenApiResponse(NotFoundSchema, description="Not found.")
            result[(404, XML)] = EMPTY_XML
        elif code == 422:
            result[(422, JSON)] = OpenApiResponse(ErrorsSchema, description="Invalid request.")
            result[(422, XML)] = OpenApiResponse(
                ErrorsXMLSchema, description="<errors><error>Full message</error></errors>"
            )
    if 422 in errors:
        # Whatever takes a body can get one it cannot parse (Rails answers 400 too).
        result[(400, JSON)] = OpenApiResponse(
            ErrorSchema, description="Malformed request body (JSON or XML)."
        )
        result[(400, XML)] = OpenApiResponse(ErrorSchema, description="<error>…</error>")
    return result
