"""Fixtures of the delivery tests: a real SMTP server and webhook receiver, the
settings that point at them, and a provider-wide API client."""

from __future__ import annotations

import logging

import pytest
from rest_framework.test import APIClient

from tests.support.receivers import SMTPServer, WebhookReceiver


@pytest.fixture
def smtp(settings):
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's per-connection lines
    with SMTPServer() as server:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST = "127.0.0.1"
        settings.EMAIL_PORT = server.port
        settings.EMAIL_USE_TLS = False
        settings.DEFAULT_FROM_EMAIL = "billing@seller.example"
        yield server


@pytest.fixture
def receiver(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True
    with WebhookReceiver() as server:
        yield server


@pytest.fixture
def provider(admin_key) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {admin_key[1]}")
    return client
