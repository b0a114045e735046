"""Webhooks: Standard Webhooks signatures, the SSRF guard, and the HTTP POST.

Signature: `webhook-signature: v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`
with `key` the base64 part of the endpoint's `whsec_` secret, `id` the outbox row's
message id (`webhook-id`, the same on every retry) and `timestamp` the send time.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import http.client
import ipaddress
import socket
import ssl
import time
from urllib.parse import urlsplit

from django.conf import settings

from invoices.delivery.models import Notification, WebhookAttempt

TIMEOUT_SECONDS = 10
EXCERPT = 1024
# Cloud metadata services not already covered by "link-local" (169.254.169.254).
_METADATA = {ipaddress.ip_address("fd00:ec2::254"), ipaddress.ip_address("100.100.100.200")}


class DeliveryFailed(Exception):
    """The receiver did not take the webhook; `permanent` when retrying cannot help."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class UnsafeTarget(DeliveryFailed):
    """The URL is not https or resolves to an internal address."""


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def _forbidden(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or address in _METADATA
    )


def target_check(url: str) -> str | None:
    """Refuse a URL that is not https or resolves to loopback, private, link-local or
    metadata addresses (at delivery time: DNS answers change), unless
    WEBHOOKS_ALLOW_PRIVATE_TARGETS, which also allows plain http.

    Returns the checked address to connect to (None: let the client resolve), so
    a DNS answer that changes between the check and the connection is not used.
    """
    allow_private = settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS
    parts = urlsplit(url)
    allowed_schemes = {"https", "http"} if allow_private else {"https"}
    if parts.scheme not in allowed_schemes:
        raise UnsafeTarget(f"the URL must use {' or '.join(sorted(allowed_schemes))}")
    if not parts.hostname:
        raise UnsafeTarget("the URL has no host")
    if allow_private:
        return None
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise DeliveryFailed(f"cannot resolve {parts.hostname}: {exc}") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    for address in addresses:
        if _forbidden(address):
            raise UnsafeTarget(f"{parts.hostname} resolves to a non-public address ({address})")
    return str(addresses[0]) if addresses else None


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the checked address; the Host header still names the URL's host."""

    def __init__(self, *args, address: str | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address or self.host, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """As above, with TLS verified against the URL's host name (SNI and certificate)."""

    def __init__(self, *args, address: str | None = None, **kwargs) -> None:
        super().__init__(*args, context=ssl.create_default_context(), **kwargs)
        self.address = address

    def connect(self) -> None:
        sock = socket.create_connection((self.address or self.host, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def post(
    url: str, body: bytes, headers: dict[str, str], *, address: str | None = None
) -> tuple[int | None, str, str]:
    """POST once, redirects not followed, no proxy: (status, response excerpt, error)."""
    parts = urlsplit(url)
    https = parts.scheme == "https"
    connection_class = _PinnedHTTPSConnection if https else _PinnedHTTPConnection
    port = parts.port or (443 if https else 80)
    connection = connection_class(
        parts.hostname or "", port, timeout=TIMEOUT_SECONDS, address=address
    )
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("POST", target, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read(EXCERPT).decode("utf-8", "replace"), ""
    except (OSError, http.client.HTTPException) as exc:
        return None, "", f"{type(exc).__name__}: {exc}"[:EXCERPT]
    finally:
        connection.close()


def signed_headers(secret: str, msg_id: str, body: bytes, timestamp: int) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": "billing-webhooks/1",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }


def webhook_deliver(notification: Notification, now: dt.datetime) -> None:
    """POST a claimed webhook row to its endpoint; every attempt is logged; raises
    DeliveryFailed unless the receiver answered 2xx."""
    endpoint = notification.endpoint
    assert endpoint is not None
    if not endpoint.enabled:
        raise DeliveryFailed("the endpoint is disabled", permanent=True)
    body = notification.body.encode()
    started = time.monotonic()
    try:
        address = target_check(endpoint.url)
    except DeliveryFailed as exc:
        WebhookAttempt.objects.create(
            notification=notification, endpoint=endpoint, error=str(exc)[:EXCERPT], created_at=now
        )
        raise
    headers = signed_headers(endpoint.secret, notification.message_id, body, int(time.time()))
    status, excerpt, error = post(endpoint.url, body, headers, address=address)
    success = status is not None and 200 <= status < 300
    WebhookAttempt.objects.create(
        notification=notification,
        endpoint=endpoint,
        success=success,
        response_status=status,
        response_excerpt=excerpt,
        error=error,
        duration_ms=int((time.monotonic() - started) * 1000),
        created_at=now,
    )
    if not success:
        raise DeliveryFailed(error or f"the receiver answered HTTP {status}")
