"""The dashboard page: SVG charts for staff with the invoice view permission."""

from __future__ import annotations

import datetime as dt

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


@pytest.mark.django_db
class TestReceivablesPage:
    def test_each_ageing_cell_links_to_its_invoices(self, client, staff_user, data, now):
        client.force_login(staff_user)
        with time_machine.travel(now, tick=False):
            response = client.get(reverse("staff:ageing"))
            assert response.status_code == 200
            [usd] = [row for row in response.context["rows"] if row["currency"] == "USD"]
            late = [
                cell for cell in usd["cells"] if cell["invoices"] and cell["label"] != "Current"
            ]
            assert late
            listed = client.get(late[0]["url"]).context["cl"]
        assert "outstanding=yes" in late[0]["url"] and "due_on__gte=" in late[0]["url"]
        assert listed.result_count == late[0]["invoices"]
        assert "Invoiced and collected per month" in response.content.decode()

    def test_each_invoiced_figure_links_to_its_invoices(self, client, staff_user, data, now):
        from invoices import services

        client.force_login(staff_user)
        with time_machine.travel(now, tick=False):
            # a cancelled invoice of this month is not invoiced, in the figure or the list
            services.invoice_cancel(
                invoice=data[1].invoices.filter(state="pending").first(), actor="t"
            )
            response = client.get(reverse("staff:ageing"))
            for flow in response.context["flows"]:
                for month in flow["months"]:
                    if month["invoices"]:
                        listed = client.get(month["url"]).context["cl"]
                        assert listed.result_count == month["invoices"], month["url"]

    def test_dashboard_red_only_for_money_past_due(self, client, staff_user, db):
        from tests.factories import AccountFactory, make_invoice

        make_invoice(account=AccountFactory(currency="EUR"), state="pending")  # not yet due
        client.force_login(staff_user)
        body = client.get(DASHBOARD).content.decode()
        assert "Overdue EUR" in body
        assert 'class="dash-kpi bad"' not in body

    def test_dashboard_date_range(self, client, staff_user, data, now):
        client.force_login(staff_user)
        with time_machine.travel(now, tick=False):
            response = client.get(DASHBOARD, {"from": "2026-09", "to": "2026-10"})
            assert response.context["data"].months == [dt.date(2026, 9, 1), dt.date(2026, 10, 1)]
            bad = client.get(DASHBOARD, {"from": "September"})
        assert len(bad.context["data"].months) == 12
        assert "YYYY-MM" in bad.context["range_error"]
