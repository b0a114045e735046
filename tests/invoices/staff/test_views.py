"""The dashboard page: SVG charts for staff with the invoice view permission."""

from __future__ import annotations

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.urls import reverse

DASHBOARD = reverse("staff:dashboard")


@pytest.mark.django_db
class TestPage:
    def test_staff_sees_charts(self, client, staff_user, data, now):
        client.force_login(staff_user)
        with time_machine.travel(now, tick=False):
            response = client.get(DASHBOARD)
        assert response.status_code == 200
        body = response.content.decode()
        assert body.count("<svg") >= 3
        assert "Revenue per month, EUR" in body
        assert "Euro Co" in body
        assert "EC2 (USD)" in body
        assert "http://" not in body.replace('xmlns="http://www.w3.org/2000/svg"', "")  # no CDN

    def test_auditor_can_view(self, client, django_user_model, db):
        user = django_user_model.objects.create_user("aud", password="pw-123456789", is_staff=True)
        user.groups.add(Group.objects.get(name="Auditor"))
        client.force_login(user)
        assert client.get(DASHBOARD).status_code == 200

    def test_staff_without_invoice_permission_is_refused(self, client, django_user_model, db):
        user = django_user_model.objects.create_user("s", password="pw-123456789", is_staff=True)
        client.force_login(user)
        assert client.get(DASHBOARD).status_code == 403

    def test_non_staff_is_redirected(self, client, django_user_model, db):
        user = django_user_model.objects.create_user("n", password="pw-123456789")
        client.force_login(user)
        response = client.get(DASHBOARD)
        assert response.status_code == 302 and "/admin/login/" in response["Location"]

    def test_empty_database(self, client, staff_user):
        client.force_login(staff_user)
        response = client.get(DASHBOARD)
        assert response.status_code == 200
        assert b"No paid invoices" in response.content
