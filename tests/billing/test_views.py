"""Project-level views: the landing page at `/`."""

from __future__ import annotations

import pytest


@pytest.mark.django_db
def test_the_root_lists_the_admin_the_dashboard_and_the_api_docs(client):
    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    for href in ("/admin/", "/staff/dashboard/", "/api/docs/", "/api/redoc/", "/api/schema/"):
        assert f'href="{href}"' in html
    assert client.post("/").status_code == 405
