"""The id path segment of the 3scale API.

Any segment without a dot or slash reaches the view, so `abc` is answered with
3scale's own 404 body rather than the router's page; stopping at the dot keeps
`.json`/`.xml` for the format suffix.
"""

from __future__ import annotations

from django.urls import register_converter


class ThreeScaleIdConverter:
    regex = r"[^/.]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value) -> str:
        return str(value)


register_converter(ThreeScaleIdConverter, "threescale_id")
