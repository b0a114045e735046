"""The OpenAPI schema: committed, current, valid, and readable offline."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.management import call_command

COMMITTED = Path(settings.BASE_DIR) / "docs" / "openapi.yaml"


def test_the_committed_schema_is_current(tmp_path):
    generated = tmp_path / "openapi.yaml"
    call_command("spectacular", "--file", str(generated), "--validate", "--fail-on-warn")
    assert COMMITTED.exists(), "docs/openapi.yaml is missing: run `make schema`"
    assert generated.read_text() == COMMITTED.read_text(), (
        "docs/openapi.yaml is out of date with the code: run `make schema` and commit it"
    )


def test_the_schema_describes_both_apis_and_their_authentication(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    paths = schema["paths"]
    for path in (
        "/v1/invoices",
        "/v1/invoices/{id}",
        "/v1/invoices/{id}/issue",
        "/v1/invoices/{id}/cancel",
        "/v1/invoices/{id}/charge",
        "/v1/invoices/{id}/mark_paid",
    ):
        assert path in paths, path
    assert set(paths["/v1/invoices"]) >= {"get", "post"}
    assert set(paths["/v1/invoices/{id}"]) >= {"get", "put", "patch", "delete"}
    schemes = schema["components"]["securitySchemes"]
    assert schemes["bearerKey"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "bk_<prefix>_<secret>",
        "description": schemes["bearerKey"]["description"],
    }
    assert schemes["accessToken"]["in"] == "query"
    assert schemes["accessToken"]["name"] == "access_token"
    assert schemes["basicKey"]["scheme"] == "basic"
    create = paths["/v1/invoices"]["post"]
    assert create["security"] == [{"bearerKey": []}]
    assert {"201", "400", "401", "403", "409", "422"} <= set(create["responses"])
    assert any(p["name"] == "Idempotency-Key" for p in create["parameters"])
    listing = paths["/v1/invoices"]["get"]
    assert {p["name"] for p in listing["parameters"]} >= {
        "page",
        "per_page",
        "state",
        "status",
        "month",
        "customer_id",
        "ordering",
    }
    assert set(listing["responses"]["200"]["headers"]) == {"X-Total-Count", "Link"}
    assert paths["/v1/invoices/{id}/charge"]["post"]["responses"]["402"]


@pytest.mark.parametrize("url", ["/api/docs/", "/api/redoc/"])
def test_the_docs_pages_load_with_local_assets_only(client, url):
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert not re.search(r"https?://", html), "the docs page must not load anything from the web"
    assets = re.findall(r'(?:src|href)="/static/([^"]+)"', html)
    assert assets, "expected the page to load its scripts from /static/"
    for asset in assets:
        assert finders.find(asset), f"{asset} is not a static file of this project"
