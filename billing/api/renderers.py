"""The /v1 JSON renderer: Decimal values written as exact number literals."""

from __future__ import annotations

from rest_framework.renderers import JSONRenderer

from billing.lib.json_codec import dumps


class DecimalJSONRenderer(JSONRenderer):
    """application/json; Decimal values are written as exact number literals."""

    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        if data is None:
            return b""
        return dumps(data).encode("utf-8")
