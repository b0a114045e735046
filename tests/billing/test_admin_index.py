"""The admin index as finance reads it: invoices and accounts first, technical tables
in a section of their own that the Finance group does not see."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group


def sections(response) -> list[tuple[str, list[str]]]:
    return [
        (app["name"], [model["object_name"] for model in app["models"]])
        for app in response.context["app_list"]
    ]


@pytest.fixture
def finance_client(client, django_user_model):
    user = django_user_model.objects.create_user("fin", password="x-password-1", is_staff=True)
    user.groups.add(Group.objects.get(name="Finance"))
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_superuser_sees_invoices_then_accounts_and_technical_last(admin_client):
    found = sections(admin_client.get("/admin/"))
    names = [name for name, _ in found]
    assert found[0][1][0] == "Invoice"
    assert found[1][1][0] == "Account"
    assert names[-1] == "Technical"
    assert sorted(found[-1][1]) == ["IdempotencyKey", "InvoiceCounter", "InvoiceEvent"]
    elsewhere = [model for _, models in found[:-1] for model in models]
    assert not {"IdempotencyKey", "InvoiceCounter", "InvoiceEvent"} & set(elsewhere)


@pytest.mark.django_db
def test_finance_does_not_see_technical_tables(finance_client):
    found = sections(finance_client.get("/admin/"))
    assert "Technical" not in [name for name, _ in found]
    assert found[0][1][0] == "Invoice"
    for url in (
        "/admin/invoices/invoicecounter/",
        "/admin/invoices/invoiceevent/",
        "/admin/accounts/idempotencykey/",
    ):
        assert finance_client.get(url).status_code == 403, url


@pytest.mark.django_db
def test_app_page_keeps_django_order(admin_client):
    response = admin_client.get("/admin/invoices/")
    assert response.status_code == 200
