"""GET /v1/invoices/{id}/einvoice: UBL or CII of an issued invoice; drafts and strangers refused."""

from __future__ import annotations

import pytest
from lxml import etree
from rest_framework.test import APIClient

from invoices.models import Invoice
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
