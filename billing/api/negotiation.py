"""Content negotiation that skips parsing `Accept` when it cannot change the answer.

REST framework parses the Accept header into media types and matches them
against every renderer on every request, even when there is no header (wrk,
most API clients) or it is `*/*` (curl): then its answer is always the first
renderer with that renderer's own media type. This class returns that answer
directly in those two cases (and when the header is exactly the first
renderer's media type), and asks REST framework for anything else, so every
406 and every `?format=` or suffix choice stays REST framework's.
"""

from __future__ import annotations

from rest_framework.negotiation import DefaultContentNegotiation


class FastContentNegotiation(DefaultContentNegotiation):
    def select_renderer(self, request, renderers, format_suffix=None):
        if renderers and not format_suffix:
            django_request = getattr(request, "_request", request)
            if self.settings.URL_FORMAT_OVERRIDE not in django_request.GET:
                accept = django_request.META.get("HTTP_ACCEPT")
                first = renderers[0]
                if accept is None or accept == "*/*" or accept == first.media_type:
                    return first, first.media_type
        return super().select_renderer(request, renderers, format_suffix)
