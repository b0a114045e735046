"""EN 16931 e-invoices built from an issued invoice's frozen data.

`document.einvoice_document` reads the invoice once into plain values; `cii`
and `ubl` turn those into UN/CEFACT CII D16B (the XML inside Factur-X) and
OASIS UBL 2.1 (the base of Peppol BIS Billing 3.0); `facturx` embeds the CII in
the invoice PDF as a Factur-X PDF/A-3. The XML is built as element trees, so
user data is always escaped.
"""

from __future__ import annotations

from invoices.einvoice.document import EInvoiceUnavailable, einvoice_document

__all__ = ["EInvoiceUnavailable", "einvoice_document", "einvoice_xml"]


def einvoice_xml(invoice, syntax: str) -> bytes:
    """The invoice as `cii` or `ubl` XML (UTF-8 bytes with a declaration)."""
    from invoices.einvoice import cii, ubl

    builders = {"cii": cii.build, "ubl": ubl.build}
    return builders[syntax](einvoice_document(invoice))
