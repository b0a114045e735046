"""Deny by default: every route of both APIs refuses an anonymous caller, except an
explicit allow-list (the health probe, the schema and its two readers), and a DRF view
that declares no authentication or permission refuses everyone."""

from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient, APIRequestFactory
from rest_framework.views import APIView

API_PREFIXES = ("api/", "admin/api/", "v1/")
# "" is the landing page: links to the admin, the dashboard and the docs, no data.
PUBLIC = {"", "healthz", "api/schema/", "api/docs/", "api/redoc/"}
# Guarded by a signature in the path instead of a key: a forged one is refused.
SIGNED = {"api/invoice_pdfs/x"}
# The route that answers 404 to any other /admin/api path (instead of the admin's login).
NO_SUCH_PATH = {"admin/api/1"}
METHODS = ("get", "post", "put", "patch", "delete")

_CONVERTER = re.compile(r"<(?:(?P<converter>\w+):)?(?P<name>\w+)>")
_REGEX_GROUP = re.compile(r"\(\?P<(?P<name>\w+)>[^)]*\)")
_SAMPLE = {"int": "1", "threescale_id": "1", "drf_format_suffix": ".json"}


def _sample_path(route: str) -> str:
    """A concrete path for a route: ids 1, format json, any other segment x."""
    route = _REGEX_GROUP.sub("1", route).replace("^", "").replace("$", "").replace("\\.", ".")
    return _CONVERTER.sub(lambda m: _SAMPLE.get(m["converter"] or "str", "x"), route)


def _paths(patterns, prefix: str = "") -> list[str]:
    paths = []
    for entry in patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            paths += _paths(entry.url_patterns, route)
        elif isinstance(entry, URLPattern):
            paths.append(_sample_path(route))
    return paths


ALL_PATHS = sorted(set(_paths(get_resolver().url_patterns)))
API_PATHS = [
    p for p in ALL_PATHS if p.startswith(API_PREFIXES) and p not in PUBLIC | SIGNED | NO_SUCH_PATH
]


def test_the_enumeration_finds_every_api():
    assert len(API_PATHS) > 20
    for expected in ("api/invoices.json", "admin/api/accounts/1", "v1/invoices/1", "v1/usage"):
        assert expected in API_PATHS
    assert PUBLIC | SIGNED <= set(ALL_PATHS)
    # A new top-level route must be added to a prefix checked here or to the allow-list.
    others = [p for p in ALL_PATHS if not p.startswith(API_PREFIXES) and p not in PUBLIC]
    assert all(p.startswith(("admin/", "staff/")) for p in others), others


@pytest.mark.django_db
@pytest.mark.parametrize("path", API_PATHS)
def test_every_api_route_refuses_an_anonymous_caller(path):
    client = APIClient()
    for method in METHODS:
        response = getattr(client, method)(f"/{path}", {}, format="json")
        assert response.status_code in (401, 403), (method, path, response.status_code)


@pytest.mark.django_db
@pytest.mark.parametrize("path", sorted(NO_SUCH_PATH))
def test_an_unknown_admin_api_path_is_404_for_everyone(path):
    client = APIClient()
    for method in METHODS:
        response = getattr(client, method)(f"/{path}", {}, format="json")
        assert response.status_code == 404, (method, path, response.status_code)


@pytest.mark.django_db
def test_a_forged_pdf_link_is_refused():
    assert APIClient().get("/api/invoice_pdfs/x").status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("path", sorted(PUBLIC))
def test_the_public_allow_list_is_public(path):
    assert APIClient().get(f"/{path}").status_code == 200


def test_a_view_that_declares_nothing_refuses_everyone():
    class Forgetful(APIView):
        def get(self, request):
            raise AssertionError("must not run")

    response = Forgetful.as_view()(APIRequestFactory().get("/forgetful"))
    assert response.status_code == 403
