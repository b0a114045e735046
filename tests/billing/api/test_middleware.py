"""API requests step around the browser's middlewares (billing/api/middleware.py) and
keep everything else: the security headers, the Host check, the body limits."""

from __future__ import annotations

import pytest
from django.core import checks
from django.db import connection
from django.http import HttpResponse
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext

from billing.api.middleware import (
    BrowserAuthenticationMiddleware,
    BrowserMessageMiddleware,
    BrowserSessionMiddleware,
    is_api_request,
)

pytestmark = pytest.mark.django_db

SECURITY_HEADERS = (
    "X-Frame-Options",
    "X-Content-Type-Options",
    "Referrer-Policy",
    "Cross-Origin-Opener-Policy",
)


@pytest.mark.parametrize(
    ("path", "api"),
    [
        ("/v1/invoices", True),
        ("/v1/invoices/7", True),
        ("/api/invoices.json", True),
        ("/api/invoices/7.xml", True),
        ("/admin/api/accounts.json", True),
        ("/api/docs/", False),
        ("/api/schema/", False),
        ("/api/redoc/", False),
        ("/admin/", False),
        ("/admin/login/", False),
        ("/staff/", False),
        ("/healthz", False),
        ("/i/some-token", False),
        ("/v1", False),
        ("/apis/x", False),
    ],
)
def test_which_requests_are_api_requests(path, api):
    assert is_api_request(RequestFactory().get(path)) is api


@pytest.mark.parametrize(
    ("middleware", "attribute"),
    [
        (BrowserSessionMiddleware, "session"),
        (BrowserAuthenticationMiddleware, "user"),
        (BrowserMessageMiddleware, "_messages"),
    ],
)
def test_the_browser_middlewares_leave_an_api_request_alone(middleware, attribute):
    seen = []

    def view(request):
        seen.append(hasattr(request, attribute))
        return HttpResponse("ok")

    # The session first: the other two read it on browser requests.
    chain = BrowserSessionMiddleware(middleware(view))
    chain(RequestFactory().get("/v1/invoices", HTTP_COOKIE="sessionid=abc"))
    chain(RequestFactory().get("/admin/"))
    assert seen == [False, True]


def test_a_staff_session_cookie_neither_authenticates_nor_is_read_on_the_api(client, staff_user):
    client.force_login(staff_user)
    with CaptureQueriesContext(connection) as captured:
        response = client.get("/v1/invoices")
    assert response.status_code == 401
    assert not [q for q in captured.captured_queries if "django_session" in q["sql"]]
    assert "Set-Cookie" not in response.headers
    assert "Cookie" not in response.headers.get("Vary", "")
    # The same cookie still signs the staff in on their pages.
    assert client.get("/admin/").status_code == 200


def test_api_and_pages_carry_the_same_security_headers(client, owner, staff_user):
    api = client.get("/v1/invoices", headers={"authorization": f"Bearer {owner.secret}"})
    threescale = client.get(f"/api/invoices.json?access_token={owner.secret}")
    refused = client.get("/v1/invoices")
    page = client.get("/admin/login/")
    assert (api.status_code, threescale.status_code, refused.status_code) == (200, 200, 401)
    for name in SECURITY_HEADERS:
        assert page.headers.get(name), name
        for response in (api, threescale, refused):
            assert response.headers.get(name) == page.headers[name], name
    assert api["X-Frame-Options"] == "DENY"
    assert api["X-Content-Type-Options"] == "nosniff"


def test_the_host_header_is_still_checked_on_the_api(owner):
    client = Client(raise_request_exception=False)
    response = client.get(
        "/v1/invoices",
        headers={"authorization": f"Bearer {owner.secret}"},
        HTTP_HOST="evil.example.com",
    )
    assert response.status_code == 400


def test_the_body_limit_still_applies_to_the_api(owner, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    client = Client()
    response = client.post(
        "/v1/usage",
        data=b"[" + b" " * 2000 + b"]",
        content_type="application/json",
        headers={"authorization": f"Bearer {owner.secret}"},
    )
    assert response.status_code == 413


def test_the_admin_still_finds_its_middlewares():
    errors = [
        message.id
        for message in checks.run_checks()
        if message.level >= checks.ERROR or message.id.startswith("admin.")
    ]
    assert errors == []
