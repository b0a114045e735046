"""Keys are redacted from logs however the parameter name is percent-encoded."""

from __future__ import annotations

import logging

import pytest
from rest_framework.test import APIClient

from billing.lib.log_redaction import REDACTED, RedactingFilter, redact

SECRET = "bk_0123abcd_secretsecretsecretsecret"


@pytest.mark.parametrize(
    "line",
    [
        f"GET /api/invoices.json?access%5Ftoken={SECRET} HTTP/1.1",
        f"GET /api/invoices.json?access%5ftoken={SECRET.replace('_', '%5F')} HTTP/1.1",
        f"GET /api/invoices.json?provider%5Fkey={SECRET}",
        f"GET /api/invoices.json?%61ccess_token={SECRET}&page=2",
        f"GET /api/invoices.json?access%255Ftoken={SECRET}",
        f"GET /api/invoices.json?x=1&ACCESS_TOKEN={SECRET}",
        f"next=%2Fapi%2Finvoices%3Faccess_token%3D{SECRET}",
        "GET /api/invoices.json?access%5Ftoken=not-our-format-but-secret",
    ],
)
def test_secrets_are_redacted_after_percent_decoding(line):
    redacted = redact(line)
    assert "secretsecret" not in redacted
    assert "not-our-format-but-secret" not in redacted
    assert REDACTED in redacted


def test_other_parameters_are_kept():
    assert redact("GET /api/invoices.json?page=2&per_page=3") == (
        "GET /api/invoices.json?page=2&per_page=3"
    )


@pytest.mark.parametrize("name", ["access%5Ftoken", "%61ccess_token", "provider%5Fkey"])
def test_an_encoded_name_authenticates_and_is_redacted_in_the_request_log(admin_key, name, caplog):
    secret = admin_key[1]
    response = APIClient().get(f"/api/invoices.json?{name}={secret}")
    assert response.status_code == 200  # the query parser decodes names: it is the key
    record = logging.LogRecord(
        "django.server",
        logging.INFO,
        __file__,
        1,
        '"%s" %s %s',
        (f"GET /api/invoices.json?{name}={secret} HTTP/1.1", "200", "12"),
        None,
    )
    RedactingFilter().filter(record)
    assert secret not in record.getMessage()
    assert secret.split("_", 2)[2] not in record.getMessage()  # the whole secret part
