"""EN 16931 e-invoices built from an issued invoice's or a credit note's frozen data.

`document.einvoice_document` (`credit_note_document`) reads the invoice (the
credit note) once into plain values; `cii`
and `ubl` turn those into UN/CEFACT CII D16B (the XML inside Factur-X) and
OASIS UBL 2.1 (the base of Peppol BIS Billing 3.0); `facturx` embeds the CII in
the invoice PDF as a Factur-X PDF/A-3. The XML is built as element trees, so
user data is always escaped.
"""

from __future__ import annotations

from invoices.einvoice.document import (
    EInvoiceUnavailable,
    credit_note_document,
    einvoice_document,
)

__all__ = [
    "EInvoiceUnavailable",
    "credit_note_document",
    "credit_note_xml",
    "einvoice_document",
    "einvoice_xml",
]


def einvoice_xml(invoice, syntax: str) -> bytes:
    """The invoice as `cii` or `ubl` XML (UTF-8 bytes with a declaration)."""
    from invoices.einvoice import cii, ubl

    builders = {"cii": cii.build, "ubl": ubl.build}
    return builders[syntax](einvoice_document(invoice))


def credit_note_xml(note, syntax: str) -> bytes:
    """The credit note as `cii` or `ubl` XML (UTF-8 bytes with a declaration)."""
    from invoices.einvoice import cii, ubl

    builders = {"cii": cii.build, "ubl": ubl.build}
    return builders[syntax](credit_note_document(note))
