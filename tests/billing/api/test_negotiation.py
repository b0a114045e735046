"""The shortcut content negotiation (billing/api/negotiation.py) answers exactly as REST
framework's own, including every refusal."""

from __future__ import annotations

import pytest
from django.http import Http404
from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from billing.api.negotiation import FastContentNegotiation
from billing.api.renderers import DecimalJSONRenderer
from billing.api.threescale.renderers import ThreeScaleJSONRenderer, ThreeScaleXMLRenderer

RENDERER_SETS = [
    [DecimalJSONRenderer()],
    [JSONRenderer()],
    [ThreeScaleXMLRenderer(), ThreeScaleJSONRenderer()],
    [ThreeScaleJSONRenderer(), ThreeScaleXMLRenderer()],
]
ACCEPTS = [
    None,
    "",
    "*/*",
    "application/json",
    "application/xml",
    "text/html",
    "application/json; indent=4",
    "application/*",
    "text/html, */*;q=0.1",
    " */*",
    "*/* ",
    "image/png",
]
QUERIES = ["", "?format=json", "?format=xml", "?format=csv"]


def outcome(negotiation, path, accept, renderers, suffix):
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    request = Request(APIRequestFactory().get(path, **headers))
    try:
        renderer, media_type = negotiation.select_renderer(request, renderers, suffix)
    except (NotAcceptable, Http404) as exc:
        return type(exc).__name__
    return type(renderer).__name__, media_type


@pytest.mark.parametrize("renderers", RENDERER_SETS, ids=lambda rs: "+".join(r.format for r in rs))
@pytest.mark.parametrize("accept", ACCEPTS)
@pytest.mark.parametrize("query", QUERIES)
@pytest.mark.parametrize("suffix", [None, "json", "xml"])
def test_the_shortcut_answers_as_rest_framework_does(renderers, accept, query, suffix):
    path = f"/v1/invoices{query}"
    assert outcome(FastContentNegotiation(), path, accept, renderers, suffix) == outcome(
        DefaultContentNegotiation(), path, accept, renderers, suffix
    )
