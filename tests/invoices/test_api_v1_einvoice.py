"""GET /v1/invoices/{id}/einvoice: UBL or CII of an issued invoice; drafts and strangers refused.

GET /v1/credit_notes/{id}/einvoice: the same for a credit note.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from lxml import etree
from rest_framework.test import APIClient

from invoices import services
from invoices.models import CreditNote, Invoice
from tests.factories import make_api_key, make_invoice
from tests.invoices.tax_cases import issued_invoice, spanish_seller

pytestmark = pytest.mark.django_db


def client_for(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.fixture
def invoice() -> Invoice:
    return issued_invoice("reverse_charge")


@pytest.fixture
def api(invoice) -> APIClient:
    _key, secret = make_api_key(scope="read", account=invoice.account)
    return client_for(secret)


@pytest.mark.parametrize(
    ("syntax", "root"),
    [
        ("ubl", "{urn:oasis:names:specification:ubl:schema:xsd:Invoice-2}Invoice"),
        (
            "cii",
            "{urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100}CrossIndustryInvoice",
        ),
    ],
)
def test_an_issued_invoice_as_xml(api, invoice, syntax, root):
    response = api.get(f"/v1/invoices/{invoice.pk}/einvoice?syntax={syntax}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/xml")
    assert etree.fromstring(response.content).tag == root
    assert invoice.friendly_id in response["Content-Disposition"]


def test_ubl_is_the_default_and_accept_xml_is_honoured(api, invoice):
    response = api.get(f"/v1/invoices/{invoice.pk}/einvoice", HTTP_ACCEPT="application/xml")
    assert response.status_code == 200
    assert b"urn:fdc:peppol.eu:2017:poacc:billing:3.0" in response.content


def test_an_unknown_syntax_is_a_400(api, invoice):
    response = api.get(f"/v1/invoices/{invoice.pk}/einvoice?syntax=pdf")
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"syntax": ["must be one of: ubl, cii"]}


def test_a_draft_is_a_409(invoice):
    spanish_seller()
    draft = make_invoice(account=invoice.account)
    _key, secret = make_api_key(scope="read", account=invoice.account)
    for accept in ("application/json", "application/xml"):
        response = client_for(secret).get(
            f"/v1/invoices/{draft.pk}/einvoice?syntax=cii", HTTP_ACCEPT=accept
        )
        assert response.status_code == 409
        assert response["Content-Type"].startswith("application/json")
        assert response.json()["error"]["code"] == "invalid_state"


def test_another_accounts_invoice_is_a_404(invoice, other):
    response = client_for(other.secret).get(f"/v1/invoices/{invoice.pk}/einvoice")
    assert response.status_code == 404


def test_no_key_is_a_401(invoice):
    assert APIClient().get(f"/v1/invoices/{invoice.pk}/einvoice").status_code == 401


@pytest.fixture
def credit_note(invoice) -> CreditNote:
    return services.credit_note_create(
        invoice=invoice, reason="Goodwill", amount=Decimal("10.00"), actor="t"
    )


@pytest.mark.parametrize(
    ("syntax", "root"),
    [
        ("ubl", "{urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2}CreditNote"),
        (
            "cii",
            "{urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100}CrossIndustryInvoice",
        ),
    ],
)
def test_a_credit_note_as_xml(api, credit_note, syntax, root):
    response = api.get(f"/v1/credit_notes/{credit_note.pk}/einvoice?syntax={syntax}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/xml")
    document = etree.fromstring(response.content)
    assert document.tag == root
    assert credit_note.number in response["Content-Disposition"]
    assert credit_note.invoice.friendly_id in response.content.decode()


def test_a_credit_note_in_ubl_by_default_and_accept_xml_is_honoured(api, credit_note):
    response = api.get(f"/v1/credit_notes/{credit_note.pk}/einvoice", HTTP_ACCEPT="application/xml")
    assert response.status_code == 200
    assert b"<cbc:CreditNoteTypeCode>381</cbc:CreditNoteTypeCode>" in response.content


def test_a_credit_note_with_an_unknown_syntax_is_a_400(api, credit_note):
    response = api.get(f"/v1/credit_notes/{credit_note.pk}/einvoice?syntax=pdf")
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"syntax": ["must be one of: ubl, cii"]}


def test_a_credit_note_of_an_invoice_without_country_codes_is_a_409():
    invoice = make_invoice(state=Invoice.State.PENDING)
    note = services.credit_note_create(
        invoice=invoice, reason="Goodwill", amount=Decimal("1.00"), actor="t"
    )
    _key, secret = make_api_key(scope="read", account=invoice.account)
    for accept in ("application/json", "application/xml"):
        response = client_for(secret).get(
            f"/v1/credit_notes/{note.pk}/einvoice?syntax=cii", HTTP_ACCEPT=accept
        )
        assert response.status_code == 409
        assert response["Content-Type"].startswith("application/json")
        assert response.json()["error"]["code"] == "invalid_state"


def test_another_accounts_credit_note_is_a_404(credit_note, other):
    response = client_for(other.secret).get(f"/v1/credit_notes/{credit_note.pk}/einvoice")
    assert response.status_code == 404


def test_a_credit_note_without_a_key_is_a_401(credit_note):
    assert APIClient().get(f"/v1/credit_notes/{credit_note.pk}/einvoice").status_code == 401
