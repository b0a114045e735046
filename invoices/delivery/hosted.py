"""The hosted pages: `/i/<token>` opens an issued invoice or a credit note, no login.

The token is Django-signed (salt below) and carries the document (`i`: an invoice
id, or `c`: a credit note id) and its link version; it does not expire, and staff
revoke every link of a document by bumping the version (`hosted_link_revoke`).
An invoice's link opens only while the invoice is issued (not a draft, not
cancelled); a credit note exists only issued, so its link opens until revoked.
"""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.db.models import F
from django.urls import reverse

from invoices.delivery.models import HostedLink
from invoices.models import CreditNote, Invoice

SALT = "invoices.hosted-page"

Document = Invoice | CreditNote


def _owner(document: Document) -> dict:
    """The HostedLink column that points at `document`."""
    if isinstance(document, CreditNote):
        return {"credit_note": document}
    return {"invoice": document}


def _version(document: Document) -> int:
    links = HostedLink.objects.filter(**_owner(document))
    return links.values_list("version", flat=True).first() or 0


def hosted_token(document: Document) -> str:
    key = "c" if isinstance(document, CreditNote) else "i"
    return signing.dumps({key: document.pk, "v": _version(document)}, salt=SALT, compress=True)


def hosted_url(document: Document) -> str:
    path = reverse("hosted-invoice", kwargs={"token": hosted_token(document)})
    return settings.PUBLIC_BASE_URL.rstrip("/") + path


def hosted_document_get(token: str) -> Document | None:
    """The invoice or credit note a token opens, or None (forged, revoked, or an
    invoice that is not issued)."""
    try:
        claims = signing.loads(token, salt=SALT)
    except signing.BadSignature:
        return None
    if not isinstance(claims, dict):
        return None
    document: Document | None
    if isinstance(claims.get("i"), int):
        document = Invoice.objects.select_related("account").filter(pk=claims["i"]).first()
        if document is not None and not document.is_issued:
            return None
    elif isinstance(claims.get("c"), int):
        notes = CreditNote.objects.select_related("invoice__account", "account")
        document = notes.filter(pk=claims["c"]).first()
    else:
        return None
    if document is None or claims.get("v") != _version(document):
        return None
    return document


def hosted_invoice_get(token: str) -> Invoice | None:
    """The invoice a token opens, or None (a credit note's token opens no invoice)."""
    document = hosted_document_get(token)
    return document if isinstance(document, Invoice) else None


def hosted_link_revoke(document: Document) -> int:
    """Invalidate every link handed out for the invoice or credit note; the new version."""
    link, created = HostedLink.objects.get_or_create(**_owner(document), defaults={"version": 1})
    if not created:
        HostedLink.objects.filter(pk=link.pk).update(version=F("version") + 1)
        link.refresh_from_db()
    return link.version
