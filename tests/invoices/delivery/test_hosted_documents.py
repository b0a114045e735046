"""The hosted pages' documents: each credit note's own `/i/<token>` page, and the PDF
(Factur-X), UBL and CII downloads of an issued invoice and of a credit note."""

from __future__ import annotations

import io
import re
from decimal import Decimal

import pytest
from django.core import mail
from lxml import etree
from pypdf import PdfReader

from invoices import services
from invoices.delivery.hosted import hosted_link_revoke, hosted_token
from invoices.einvoice import credit_note_xml, einvoice_xml
from invoices.einvoice.facturx import FACTURX_FILENAME
from invoices.models import CreditNote, Invoice
from tests.factories import make_invoice
from tests.invoices.tax_cases import issued_invoice

pytestmark = pytest.mark.django_db

ROOTS = {
    "ubl": "{urn:oasis:names:specification:ubl:schema:xsd:Invoice-2}Invoice",
    "cii": "{urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100}CrossIndustryInvoice",
}
CREDIT_NOTE_ROOTS = {
    "ubl": "{urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2}CreditNote",
    "cii": ROOTS["cii"],
}


def _path(document) -> str:
    return f"/i/{hosted_token(document)}"


def _credit(invoice: Invoice, amount: str = "10.00") -> CreditNote:
    return services.credit_note_create(
        invoice=invoice, reason="Service outage", amount=Decimal(amount), actor="test"
    )


def _body(response) -> bytes:
    if response.streaming:
        return b"".join(response.streaming_content)
    return response.content


@pytest.fixture
def einvoice() -> Invoice:
    """An issued invoice whose parties have country codes: it can be an e-invoice."""
    return issued_invoice("reverse_charge")


# -- e-invoice downloads --------------------------------------------------------------


@pytest.mark.parametrize("syntax", ["ubl", "cii"])
def test_the_invoice_page_offers_its_einvoices(client, einvoice, syntax):
    page = client.get(_path(einvoice)).content.decode()
    assert f'id="download-{syntax}"' in page
    assert "Factur-X" in page
    response = client.get(f"{_path(einvoice)}/einvoice/{syntax}")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/xml; charset=utf-8"
    assert response["Content-Disposition"] == (
        f'attachment; filename="invoice-{einvoice.friendly_id}-{syntax}.xml"'
    )
    assert response["Cache-Control"] == "private, no-store"
    # the very document GET /v1/invoices/{id}/einvoice serves
    assert response.content == einvoice_xml(einvoice, syntax)
    assert etree.fromstring(response.content).tag == ROOTS[syntax]


def test_the_invoice_pdf_is_factur_x(client, einvoice, django_assert_max_num_queries):
    response = client.get(f"{_path(einvoice)}/pdf")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert f'filename="invoice-{einvoice.friendly_id}.pdf"' in response["Content-Disposition"]
    reader = PdfReader(io.BytesIO(_body(response)))
    [embedded] = reader.attachments[FACTURX_FILENAME]
    assert embedded == einvoice_xml(einvoice, "cii")
    # rendered once and stored: the next download streams the stored file
    einvoice.refresh_from_db()
    assert einvoice.pdf
    with django_assert_max_num_queries(4):
        again = client.get(f"{_path(einvoice)}/pdf")
    assert _body(again) == einvoice.pdf.open("rb").read()


def test_an_invoice_without_country_codes_offers_only_its_plain_pdf(client):
    invoice = make_invoice(state=Invoice.State.PENDING)  # the factories' parties have none
    page = client.get(_path(invoice)).content.decode()
    assert 'id="download-pdf"' in page
    assert 'id="download-ubl"' not in page and "Factur-X" not in page
    assert client.get(f"{_path(invoice)}/einvoice/ubl").status_code == 404
    pdf = PdfReader(io.BytesIO(_body(client.get(f"{_path(invoice)}/pdf"))))
    assert pdf.attachments == {}


def test_downloads_need_a_valid_link_and_a_known_syntax(client, einvoice):
    assert client.get(f"{_path(einvoice)}/einvoice/xrechnung").status_code == 404
    assert client.get(f"/i/{hosted_token(einvoice)[:-2]}xx/einvoice/ubl").status_code == 404
    token = hosted_token(einvoice)
    hosted_link_revoke(einvoice)
    for suffix in ("", "/pdf", "/einvoice/ubl", "/einvoice/cii"):
        assert client.get(f"/i/{token}{suffix}").status_code == 404, suffix
    draft = make_invoice()
    assert client.get(f"{_path(draft)}/einvoice/cii").status_code == 404


def test_a_cancelled_invoice_offers_no_einvoice(client, einvoice):
    services.invoice_cancel(invoice=einvoice, actor="test", reason="issued by mistake")
    page = client.get(_path(einvoice)).content.decode()
    assert 'id="download-ubl"' not in page and 'id="pay"' not in page
    assert client.get(f"{_path(einvoice)}/einvoice/ubl").status_code == 404


# -- the credit note's own page -------------------------------------------------------


def test_each_credit_note_has_its_own_page(client, einvoice):
    note = _credit(einvoice)
    second = _credit(einvoice, "5.00")
    response = client.get(_path(note))
    assert response.status_code == 200
    assert response["Cache-Control"] == "private, no-store"
    page = response.content.decode()
    assert f'id="credit-note-number">{note.number}<' in page
    assert f'id="credit-total">{note.cost} EUR<' in page
    assert "Service outage" in page
    # it links to the credited invoice's own page
    [link] = re.findall(r'href="http://localhost:8000(/i/[^"]+)" id="credited-invoice"', page)
    assert einvoice.friendly_id in client.get(link).content.decode()
    assert 'id="pay"' not in page
    # the two notes' links differ and each opens its own note
    assert hosted_token(second) != hosted_token(note)
    assert second.number in client.get(_path(second)).content.decode()


@pytest.mark.parametrize("syntax", ["ubl", "cii"])
def test_the_credit_note_page_offers_its_einvoices(client, einvoice, syntax):
    note = _credit(einvoice)
    assert f'id="download-{syntax}"' in client.get(_path(note)).content.decode()
    response = client.get(f"{_path(note)}/einvoice/{syntax}")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/xml; charset=utf-8"
    assert response["Content-Disposition"] == (
        f'attachment; filename="credit-note-{note.number}-{syntax}.xml"'
    )
    assert response.content == credit_note_xml(note, syntax)
    assert etree.fromstring(response.content).tag == CREDIT_NOTE_ROOTS[syntax]


def test_the_credit_note_pdf_is_factur_x(client, einvoice):
    note = _credit(einvoice)
    response = client.get(f"{_path(note)}/pdf")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert f'filename="credit-note-{note.number}.pdf"' in response["Content-Disposition"]
    reader = PdfReader(io.BytesIO(_body(response)))
    [embedded] = reader.attachments[FACTURX_FILENAME]
    assert embedded == credit_note_xml(note, "cii")
    note.refresh_from_db()
    assert note.pdf  # stored, as the render task would have


def test_a_credit_note_link_is_revoked_alone(client, einvoice):
    note = _credit(einvoice)
    token = hosted_token(note)
    assert hosted_link_revoke(note) == 1
    assert client.get(f"/i/{token}").status_code == 404
    assert client.get(f"/i/{token}/pdf").status_code == 404
    assert client.get(_path(note)).status_code == 200  # the new link works
    assert client.get(_path(einvoice)).status_code == 200  # the invoice's is untouched
    # and a credit note's link never pays anything
    assert client.post(f"{_path(note)}/pay", {"card_token": "tok_visa"}).status_code == 404


def test_the_credit_note_email_carries_its_own_link(
    client, einvoice, django_capture_on_commit_callbacks
):
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        note = _credit(einvoice)
    [message] = [m for m in mail.outbox if note.number in m.subject]
    link = next(word for word in message.body.split() if "/i/" in word)
    page = client.get(link.split("localhost:8000", 1)[1])
    assert page.status_code == 200
    assert f'id="credit-note-number">{note.number}<' in page.content.decode()
    html = message.alternatives[0][0]  # type: ignore[attr-defined]
    assert f"View credit note {note.number}" in html and link in html
