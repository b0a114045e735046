"""The hosted invoice page: `/i/<token>`, opened without logging in.

The token is Django-signed (salt below) and carries the invoice id and its link
version; it does not expire, and staff revoke every link of an invoice by bumping
the version (`hosted_link_revoke`).
"""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.db.models import F
from django.urls import reverse

from invoices.delivery.models import HostedLink
from invoices.models import Invoice

SALT = "invoices.hosted-page"


def _version(invoice: Invoice) -> int:
    return HostedLink.objects.filter(invoice=invoice).values_list("version", flat=True).first() or 0


def hosted_token(invoice: Invoice) -> str:
    return signing.dumps({"i": invoice.pk, "v": _version(invoice)}, salt=SALT, compress=True)


def hosted_url(invoice: Invoice) -> str:
    path = reverse("hosted-invoice", kwargs={"token": hosted_token(invoice)})
    return settings.PUBLIC_BASE_URL.rstrip("/") + path


def hosted_invoice_get(token: str) -> Invoice | None:
    """The invoice a token opens, or None (forged, revoked, or not issued)."""
    try:
        claims = signing.loads(token, salt=SALT)
    except signing.BadSignature:
        return None
    if not isinstance(claims, dict) or not isinstance(claims.get("i"), int):
        return None
    invoice = Invoice.objects.select_related("account").filter(pk=claims["i"]).first()
    if invoice is None or not invoice.is_issued or claims.get("v") != _version(invoice):
        return None
    return invoice


def hosted_link_revoke(invoice: Invoice) -> int:
    """Invalidate every link handed out for the invoice; the new version."""
    link, created = HostedLink.objects.get_or_create(invoice=invoice, defaults={"version": 1})
    if not created:
        HostedLink.objects.filter(pk=link.pk).update(version=F("version") + 1)
        link.refresh_from_db()
    return link.version
