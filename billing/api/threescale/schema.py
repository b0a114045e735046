"""OpenAPI descriptions shared by every 3scale endpoint: media types, links,
pagination metadata and the error answers (documentation only)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

XML = "application/xml"
JSON = "application/json"


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

XML_BODY = OpenApiResponse(OpenApiTypes.STR, description="The XML representation.")
EMPTY = OpenApiResponse(description="Empty body.")
# For a media-typed answer whose body is empty (3scale's XML 404).
EMPTY_XML = OpenApiResponse(OpenApiTypes.STR, description="Empty body.")


def responses(status: int, json_schema, *, errors: tuple[int, ...] = (403, 404)) -> dict:
    """A success in both formats plus the 3scale error answers that apply."""
    result: dict = {(status, JSON): json_schema, (status, XML): XML_BODY}
    # Any 3scale URL answers an unknown format (suffix or `format`) this way.
    result[(406, XML)] = OpenApiResponse(
        OpenApiTypes.STR, description="Unknown format (only .json and .xml); empty body."
    )
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
            result[(403, XML)] = OpenApiResponse(OpenApiTypes.STR, description="<error>…</error>")
        elif code == 404:
            result[(404, JSON)] = OpenApiResponse(NotFoundSchema, description="Not found.")
            result[(404, XML)] = EMPTY_XML
        elif code == 422:
            result[(422, JSON)] = OpenApiResponse(ErrorsSchema, description="Invalid request.")
            result[(422, XML)] = OpenApiResponse(
                OpenApiTypes.STR, description="<errors><error>Full message</error></errors>"
            )
    if 422 in errors:
        # Whatever takes a body can get one it cannot parse (Rails answers 400 too).
        result[(400, JSON)] = OpenApiResponse(
            ErrorSchema, description="Malformed request body (JSON or XML)."
        )
        result[(400, XML)] = OpenApiResponse(OpenApiTypes.STR, description="<error>…</error>")
    return result
