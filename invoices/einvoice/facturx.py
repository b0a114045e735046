"""The Factur-X PDF: the invoice (credit note) PDF as PDF/A-3b with its CII XML embedded.

WeasyPrint writes the PDF/A-3b; the `factur-x` package checks the XML against
the Factur-X XSD, embeds it as `factur-x.xml` and writes the XMP metadata that
tells readers which profile it follows (EN 16931).
"""

from __future__ import annotations

import logging

from billing.lib.pdf import html_to_pdf
from invoices.einvoice import cii
from invoices.einvoice.document import (
    EInvoiceUnavailable,
    credit_note_document,
    einvoice_document,
)
from invoices.models import CreditNote, Invoice

logger = logging.getLogger(__name__)
# The package logs every step at INFO; only its warnings are worth a log line here.
logging.getLogger("factur-x").setLevel(logging.WARNING)

FACTURX_FILENAME = "factur-x.xml"


def _embed(html: str, xml: bytes, seller: str, kind: str, number: str, issued_on) -> bytes:
    from facturx import generate_from_binary

    pdf = html_to_pdf(html, pdf_variant="pdf/a-3b")
    return generate_from_binary(
        pdf,
        xml,
        flavor="factur-x",
        level="en16931",
        check_xsd=True,
        check_schematron=False,  # the package's check calls a remote server
        pdf_metadata={
            "author": seller,
            "keywords": f"Factur-X, {kind}",
            "title": f"{seller}: {kind} {number}",
            "subject": f"Factur-X {kind.lower()} {number} dated {issued_on}",
        },
        lang="en",
    )


def facturx_pdf(invoice: Invoice) -> bytes:
    """The Factur-X PDF of an issued invoice; raises EInvoiceUnavailable for a draft."""
    from invoices.pdf import invoice_pdf_html

    xml = cii.build(einvoice_document(invoice))
    seller = invoice.seller_details.get("name", "")
    return _embed(
        invoice_pdf_html(invoice),
        xml,
        seller,
        "Invoice",
        invoice.friendly_id or "",
        invoice.issued_on,
    )


def credit_note_facturx_pdf(note: CreditNote) -> bytes:
    """The Factur-X PDF of a credit note (CII TypeCode 381, referring to its invoice)."""
    from invoices.pdf import credit_note_pdf_html

    xml = cii.build(credit_note_document(note))
    seller = note.seller_details.get("name", "")
    return _embed(
        credit_note_pdf_html(note), xml, seller, "Credit note", note.number, note.issued_on
    )


def issued_pdf_bytes(invoice: Invoice) -> bytes:
    """The PDF stored for an issued invoice: Factur-X when the invoice can be an e-invoice.

    An invoice issued before its parties had country codes keeps a plain PDF,
    as does one whose e-invoice fails.
    """
    from invoices.pdf import invoice_pdf_bytes

    try:
        return facturx_pdf(invoice)
    except EInvoiceUnavailable as exc:
        logger.info("invoice %s: plain PDF, no Factur-X (%s)", invoice.pk, exc)
    except Exception:
        # The customer's PDF must not depend on the e-invoice: store the plain
        # document and leave the failure (an XSD refusal, say) in the log.
        logger.exception("invoice %s: Factur-X failed; storing the plain PDF", invoice.pk)
    return invoice_pdf_bytes(invoice)


def credit_note_stored_pdf_bytes(note: CreditNote) -> bytes:
    """The PDF stored for a credit note: Factur-X when it can be an e-invoice, else plain."""
    from invoices.pdf import credit_note_pdf_bytes as plain_pdf_bytes

    try:
        return credit_note_facturx_pdf(note)
    except EInvoiceUnavailable as exc:
        logger.info("credit note %s: plain PDF, no Factur-X (%s)", note.pk, exc)
    except Exception:
        logger.exception("credit note %s: Factur-X failed; storing the plain PDF", note.pk)
    return plain_pdf_bytes(note)
