"""Hardening: production settings, keys kept out of logs, limits, safe XML, escaped output."""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.db import InterfaceError, OperationalError
from django.test import Client
from pypdf import PdfReader
from rest_framework.test import APIClient

from billing.lib.log_redaction import REDACTED, RedactingFilter, redact
from invoices.models import Invoice
from invoices.pdf import invoice_pdf_bytes
from tests.factories import AccountFactory, make_api_key, make_invoice
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
PORT = free_port()  # this suite's gunicorn
HOSTILE = "<script>alert(1)</script><img src=http://127.0.0.1:9/x>"


def _production_env(**extra) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DEBUG", "DJANGO_SETTINGS_MODULE", "SECURE_SSL_REDIRECT", "STATIC_MANIFEST"}
    }
    env.update(
        DEBUG="0",
        SECRET_KEY="prod-" + "k8#Qz!w2" * 8,
        ALLOWED_HOSTS="billing.example.com,127.0.0.1",
        DJANGO_SETTINGS_MODULE="billing.settings",
    )
    env.update(extra)
    return env


# --- production settings ------------------------------------------------------------


def test_production_settings_are_locked_down():
    script = (
        "import json; from django.conf import settings as s; print(json.dumps({"
        "'debug': s.DEBUG, 'session_secure': s.SESSION_COOKIE_SECURE,"
        "'csrf_secure': s.CSRF_COOKIE_SECURE, 'hsts': s.SECURE_HSTS_SECONDS,"
        "'ssl_redirect': s.SECURE_SSL_REDIRECT, 'httponly': s.SESSION_COOKIE_HTTPONLY,"
        "'renderers': s.REST_FRAMEWORK['DEFAULT_RENDERER_CLASSES'],"
        "'middleware': s.MIDDLEWARE}))"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT,
        env=_production_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.strip().splitlines()[-1])
    assert values["debug"] is False
    assert values["session_secure"] and values["csrf_secure"] and values["httponly"]
    assert values["hsts"] >= 31536000
    assert values["ssl_redirect"] is True
    # No browsable API: JSON only (the 3scale views bring their own XML renderer).
    assert values["renderers"] == ["rest_framework.renderers.JSONRenderer"]
    assert "billing.api.errors.DatabaseUnavailableMiddleware" in values["middleware"]


def test_no_browsable_api_even_when_a_browser_asks(owner):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {owner.secret}")
    response = client.get("/v1/invoices", HTTP_ACCEPT="text/html")
    assert not response["Content-Type"].startswith("text/html")
    assert b"<html" not in response.content.lower()


# --- API keys never reach the logs -------------------------------------------------------


def test_the_redaction_rules():
    key = "bk_1a2b3c4d_" + "S3cr3t-" * 6
    line = redact(f'"GET /api/invoices.json?access_token={key}&page=2 HTTP/1.1" 200')
    assert key not in line and f"access_token={REDACTED}&page=2" in line
    assert "provider_key=" + REDACTED in redact("provider_key=abc123&x=1")
    assert redact("Authorization: Bearer abc.def") == f"Authorization: Bearer {REDACTED}"
    assert redact(f'{{"access_token": "{key}"}}') == f'{{"access_token": "{REDACTED}"}}'
    # A bare key keeps only its public prefix, so the line still says which key it was.
    assert redact(f"key {key} used") == f"key bk_1a2b3c4d_{REDACTED} used"


def test_keys_in_query_strings_do_not_reach_the_logs(owner, caplog):
    caplog.set_level(logging.DEBUG)
    client = APIClient()
    for url in (
        f"/api/invoices.json?access_token={owner.secret}",
        f"/api/invoices/999999.json?provider_key={owner.secret}",
        f"/api/nowhere?access_token={owner.secret}",
        "/api/invoices.json?access_token=bk_00000000_" + "n" * 43,
    ):
        client.get(url)
    # The development server's request log writes the whole request line.
    logging.getLogger("django.server").info(
        '"%s" %s %s', f"GET /api/invoices.json?access_token={owner.secret} HTTP/1.1", 200, 120
    )
    logging.getLogger("django.request").warning(
        "Forbidden: %s", f"/api/invoices?provider_key={owner.secret}"
    )
    assert caplog.records, "expected the requests to be logged"
    for record in caplog.records:
        assert owner.secret not in record.getMessage()
    assert owner.secret not in caplog.text


@pytest.mark.slow
def test_gunicorn_access_log_is_redacted(tmp_path):
    """A real gunicorn with an access log, and a key in the query string and in a header."""
    log = tmp_path / "access.log"
    key = "bk_0a1b2c3d_" + "Z" * 43
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "billing.wsgi",
            "--bind",
            f"127.0.0.1:{PORT}",
            "--workers",
            "1",
            "--access-logfile",
            str(log),
            "--access-logformat",
            '%(h)s "%(r)s" %(s)s %(U)s?%(q)s "%({authorization}i)s"',
            "--logger-class",
            "billing.lib.log_redaction.RedactingGunicornLogger",
        ],
        cwd=ROOT,
        env=_production_env(SECURE_SSL_REDIRECT="0", DATABASE_URL="sqlite:///:memory:"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{PORT}/healthz?access_token={key}&provider_key={key}"
        deadline = time.monotonic() + 30
        while True:
            try:
                request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
                with urllib.request.urlopen(request, timeout=2) as response:
                    assert response.status == 200
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        server.terminate()
        server.wait(timeout=30)
    text = log.read_text()
    assert "/healthz" in text
    assert key not in text
    assert REDACTED in text


def test_redacting_filter_keeps_records_flowing():
    record = logging.LogRecord(
        "django.server", logging.INFO, __file__, 1, '"%s" %s', ("GET /?access_token=k1", 200), None
    )
    assert RedactingFilter().filter(record) is True
    assert record.getMessage() == f'"GET /?access_token={REDACTED}" 200'


# --- limits: each one answers 4xx ---------------------------------------------------------


def test_page_size_is_limited(owner):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {owner.secret}")
    response = client.get("/v1/invoices?per_page=101")
    assert response.status_code == 400
    assert "per_page" in response.json()["error"]["details"]
    response = client.get(
        "/v1/usage/report?start_date=2026-01-01&end_date=2026-01-31&per_page=1001"
    )
    assert response.status_code == 400
    # 3scale's API caps the page at 20 instead (as 3scale does), never more.
    three = APIClient().get(f"/api/invoices.json?access_token={owner.secret}&per_page=5000")
    assert three.status_code == 200


def test_batch_size_is_limited(owner):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {owner.secret}")
    record = {
        "resource_id": "r",
        "service": "EC2",
        "region": "eu-west-1",
        "start_time": "2026-01-01T00:00:00Z",
        "end_time": "2026-01-01T01:00:00Z",
        "cost": "1",
    }
    batch = [dict(record, id=f"r-{n}") for n in range(10_001)]
    response = client.post("/v1/usage", json.dumps(batch), content_type="application/json")
    assert response.status_code == 413
    assert not owner.account.usage_records.exists()


def test_report_range_is_limited(owner):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {owner.secret}")
    response = client.get("/v1/usage/report?start_date=2024-01-01&end_date=2026-01-01")
    assert response.status_code == 400
    assert "end_date" in response.json()["error"]["details"]


def test_request_size_is_limited(owner, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4096
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {owner.secret}")
    body = json.dumps([{"id": "x" * 8000}])
    assert client.post("/v1/usage", body, content_type="application/json").status_code == 413
    assert client.post("/v1/invoices", body, content_type="application/json").status_code == 413


# --- XML is parsed safely -----------------------------------------------------------------

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<invoice><account_id>1</account_id><period>&lol9;</period></invoice>"""

EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE invoice [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<invoice><account_id>1</account_id><period>&x;</period></invoice>"""


@pytest.mark.parametrize("payload", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["laughs", "xxe"])
@pytest.mark.parametrize("content_type", ["application/xml", "text/xml"])
def test_hostile_xml_is_refused(owner, payload, content_type):
    response = APIClient().post(
        f"/api/invoices.xml?access_token={owner.secret}", payload, content_type=content_type
    )
    assert 400 <= response.status_code < 500
    assert b"root:" not in response.content
    assert not Invoice.objects.exists()


# --- user data is escaped wherever it is shown ----------------------------------------------


@pytest.fixture
def hostile_invoice(db):
    account = AccountFactory(org_name=HOSTILE, address_line1=HOSTILE, city="<b>Springfield</b>")
    invoice = make_invoice(account=account, state=Invoice.State.PENDING)
    from invoices import services

    services.invoice_mark_paid(
        invoice=invoice, actor="test", method="bank_transfer", reference=HOSTILE
    )
    invoice.refresh_from_db()
    return invoice


@pytest.fixture
def finance_client(client, django_user_model):
    user = django_user_model.objects.create_user("fin", "fin@example.test", "pw-123456789")
    user.is_staff = True
    user.save()
    user.groups.add(Group.objects.get(name="Finance"))
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    "url",
    [
        "/admin/invoices/invoice/",
        "/admin/accounts/account/",
        "/admin/invoices/invoice/{id}/change/",
        "/staff/dashboard/",
    ],
)
def test_hostile_names_are_escaped_in_staff_pages(hostile_invoice, finance_client, url):
    response = finance_client.get(url.format(id=hostile_invoice.pk))
    assert response.status_code == 200
    html = response.content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "<img src=http://127.0.0.1:9/x>" not in html
    if url != "/staff/dashboard/" or "alert(1)" in html:
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_the_dashboard_shows_the_hostile_account_escaped(hostile_invoice, finance_client):
    html = finance_client.get("/staff/dashboard/").content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_hostile_names_are_text_in_the_pdf_and_nothing_is_fetched(hostile_invoice, monkeypatch):
    attempts: list[object] = []
    real_connect = socket.socket.connect

    def spy(sock, address):
        attempts.append(address)
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", spy)
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: attempts.append(a))
    pdf = invoice_pdf_bytes(hostile_invoice)
    assert attempts == []
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    compact = "".join(text.split())
    # Printed as the characters it is made of, not interpreted as markup.
    assert "<script>alert(1)</script>" in compact
    assert "<imgsrc=http://127.0.0.1:9/x>" in compact


def test_hostile_names_are_escaped_in_3scale_xml(hostile_invoice, admin_key):
    secret = admin_key[1]
    for url in (
        f"/admin/api/accounts/{hostile_invoice.account_id}.xml?access_token={secret}",
        f"/api/invoices/{hostile_invoice.pk}.xml?access_token={secret}",
    ):
        response = APIClient().get(url)
        assert response.status_code == 200
        assert b"<script>" not in response.content
        assert b"&lt;script&gt;" in response.content
    # JSON carries the name as data, exactly as it was given.
    v1 = APIClient()
    v1.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    customer = v1.get(f"/v1/invoices/{hostile_invoice.pk}").json()["customer"]
    assert HOSTILE in customer.values()


def test_an_api_key_is_never_echoed_back(owner):
    # Keys are shown once, at creation: no API answer carries one.
    key, secret = make_api_key(scope="write", name="echo")
    response = APIClient().get(f"/admin/api/accounts.json?access_token={secret}")
    assert response.status_code == 200
    assert secret.encode() not in response.content


# --- a lost database, and errors no view wrote, in the caller's format ----------------------


@pytest.fixture
def database_down(monkeypatch):
    """Every API-key lookup fails as it does when PostgreSQL is unreachable."""

    def unreachable(*args, **kwargs):
        raise OperationalError("connection to server at 127.0.0.1 failed: Connection refused")

    monkeypatch.setattr("billing.api.authentication.api_key_get_by_secret", unreachable)


def test_v1_answers_503_in_its_format_when_the_database_is_down(owner, database_down):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {owner.secret}")
    response = client.get("/v1/invoices")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "service_unavailable"
    assert response["Retry-After"]
    assert b"Traceback" not in response.content


@pytest.mark.parametrize(
    ("suffix", "expected"),
    [
        (".json", b'{"error":"Service temporarily unavailable"}'),
        (".xml", b"<error>Service temporarily unavailable</error>"),
    ],
)
def test_3scale_answers_503_in_its_format_when_the_database_is_down(
    owner, database_down, suffix, expected
):
    response = APIClient().get(f"/api/invoices{suffix}?access_token={owner.secret}")
    assert response.status_code == 503
    assert expected in response.content


def test_the_admin_answers_a_plain_503_when_the_database_is_down(staff_user, client, monkeypatch):
    client.force_login(staff_user)

    def unreachable(self, *args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr("django.contrib.sessions.backends.db.SessionStore.load", unreachable)
    response = client.get("/admin/invoices/invoice/")
    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/html")
    assert response["Retry-After"] == "5"
    assert b"Traceback" not in response.content and b"OperationalError" not in response.content


@pytest.mark.parametrize(
    ("middleware", "url"),
    [
        ("django.contrib.sessions.middleware.SessionMiddleware", "/admin/login/"),
        # API requests step around the session middleware (billing/api/middleware.py).
        ("django.middleware.clickjacking.XFrameOptionsMiddleware", "/admin/login/"),
        ("django.middleware.clickjacking.XFrameOptionsMiddleware", "/v1/invoices"),
        ("django.middleware.clickjacking.XFrameOptionsMiddleware", "/api/invoices.json"),
        ("django.middleware.common.CommonMiddleware", "/admin/api/accounts.json"),
    ],
)
def test_a_database_error_outside_any_view_is_a_503_too(staff_user, monkeypatch, middleware, url):
    def broken(self, request, response):
        raise InterfaceError("connection already closed")

    monkeypatch.setattr(f"{middleware}.process_response", broken)
    client = Client(raise_request_exception=False)
    response = client.get(url)
    assert response.status_code == 503, url
    assert b"Traceback" not in response.content


@pytest.mark.parametrize(
    ("url", "content_type", "body"),
    [
        ("/v1/nowhere", "application/json", None),
        ("/api/nowhere.json", "application/json", b'{"status":"Not found"}'),
        ("/api/nowhere", "application/xml", b""),
    ],
)
def test_unknown_api_urls_are_404_in_the_apis_format(url, content_type, body):
    response = Client().get(url)
    assert response.status_code == 404
    assert response["Content-Type"].startswith(content_type)
    if body is None:
        assert response.json()["error"]["code"] == "not_found"
    else:
        assert response.content == body


def test_a_crash_in_an_api_view_is_a_json_500_without_details(owner, monkeypatch):
    def crash(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr("billing.api.authentication.api_key_get_by_secret", crash)
    response = Client(raise_request_exception=False).get(
        "/v1/invoices", HTTP_AUTHORIZATION=f"Bearer {owner.secret}"
    )
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert b"secret internals" not in response.content


def test_pages_off_the_apis_keep_djangos_own_error_pages():
    response = Client().get("/nowhere/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


# --- NUL characters (PostgreSQL refuses them in text; found by the fuzzer) --------------------


@pytest.mark.parametrize(
    "url",
    [
        "/api/invoices.json?state=paid%00x",
        "/api/invoices.json?buyer_query=Own%00er",
        "/api/invoices.json?number=2026%00",
        "/api/accounts/{account}/invoices.json?state=open%00",
        "/admin/api/accounts.json?state=active%00",
    ],
)
def test_nul_characters_in_3scale_filters_match_nothing(admin_key, owner, url):
    make_invoice(account=owner.account)
    response = APIClient().get(
        url.format(account=owner.account.pk) + f"&access_token={admin_key[1]}"
    )
    assert response.status_code == 200
    body = response.json()
    assert body.get("invoices", body.get("accounts")) == []


def test_a_nul_character_in_a_3scale_write_is_a_field_error(admin_key):
    response = APIClient().post(
        f"/admin/api/signup.json?access_token={admin_key[1]}",
        {"org_name": "Nul\x00Co", "email": "ap@nul.test"},
    )
    assert response.status_code == 422
    assert response.json() == {"errors": {"org_name": ["contains a NUL character"]}}


@pytest.mark.parametrize(
    "url",
    [
        "/v1/invoices?state=a%00b",
        "/v1/invoices?customer_id=1%00",
        "/v1/usage/report?start_date=2026-01-01&end_date=2026-01-02&service=a%00b",
    ],
)
def test_nul_characters_in_v1_parameters_are_400(owner, url):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {owner.secret}")
    assert client.get(url).status_code == 400


@pytest.mark.parametrize(
    "url", ["/admin/invoices/invoice/?q=a%00b", "/admin/accounts/account/?q=%00"]
)
def test_nul_characters_in_admin_searches_are_not_a_server_error(finance_client, url):
    response = finance_client.get(url)
    assert response.status_code < 500
