"""The invoice list and page: filters, search, totals, read-only issued invoices,
draft editing through the services, the PDF and permissions."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from invoices.models import Invoice, InvoiceCounter, InvoiceEvent, LineItem, PaymentTransaction
from tests.factories import AccountFactory, make_invoice

S = Invoice.State
CHANGELIST = reverse("admin:invoices_invoice_changelist")


def change_url(invoice: Invoice) -> str:
    return reverse("admin:invoices_invoice_change", args=[invoice.pk])


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def act(client, action: str, invoices, **extra):
    data = {"action": action, "_selected_action": [inv.pk for inv in invoices], **extra}
    return client.post(CHANGELIST, data, follow=True)


@pytest.mark.django_db
class TestChangelist:
    def test_lists_number_account_state_badge_and_total(self, finance, media):
        invoice = make_invoice(
            account=AccountFactory(org_name="Acme", currency="EUR"),
            lines=[("2", "1500.50")],
            state=S.PENDING,
        )
        response = finance.get(CHANGELIST)
        assert response.status_code == 200
        body = response.content.decode()
        assert invoice.friendly_id in body
        assert "Acme" in body
        assert "state-badge" in body and "Awaiting payment" in body
        assert "3,001.00" in body  # Decimal, formatted to the currency's minor unit

    def test_filters_by_state_month_currency_and_account(self, finance, media):
        nov = dt.date(2026, 11, 1)
        eur = AccountFactory(currency="EUR")
        a = make_invoice(account=eur, period=nov, state=S.PENDING)
        b = make_invoice(period=dt.date(2026, 10, 1), state=S.PENDING)
        c = make_invoice(period=nov)
        shown = lambda query: set(  # noqa: E731
            finance.get(CHANGELIST + query).context["cl"].result_list.values_list("pk", flat=True)
        )
        assert shown("?state__exact=pending") == {a.pk, b.pk}
        assert shown("?month=2026-11") == {a.pk, c.pk}
        assert shown("?currency=EUR") == {a.pk}
        assert shown(f"?account={eur.pk}") == {a.pk}
        assert shown("?state__exact=pending&month=2026-11") == {a.pk}

    def test_bad_month_is_not_a_server_error(self, finance):
        response = finance.get(CHANGELIST + "?month=November")
        assert response.status_code in (200, 302)
        assert response.status_code != 500

    def test_overdue_filter(self, finance, media):
        past = timezone.now() - dt.timedelta(days=90)
        overdue = make_invoice(state=S.PENDING, now=past)
        paid_late = make_invoice(state=S.PAID, now=past)
        not_due = make_invoice(state=S.PENDING)
        result = finance.get(CHANGELIST + "?overdue=yes").context["cl"].result_list
        assert set(result.values_list("pk", flat=True)) == {overdue.pk}
        result = finance.get(CHANGELIST + "?overdue=no").context["cl"].result_list
        assert {paid_late.pk, not_due.pk} <= set(result.values_list("pk", flat=True))

    def test_search_by_number_organisation_and_email(self, finance, media):
        acme = AccountFactory(org_name="Acme Rockets", billing_email="ap@acme.test")
        mine = make_invoice(account=acme, state=S.PENDING)
        make_invoice(state=S.PENDING)
        for term in (mine.friendly_id, "rockets", "ap@acme"):
            result = finance.get(CHANGELIST, {"q": term}).context["cl"].result_list
            assert list(result.values_list("pk", flat=True)) == [mine.pk], term
        by_prefix = finance.get(CHANGELIST, {"q": mine.friendly_id[:8]}).context["cl"]
        assert by_prefix.result_count == 2

    def test_totals_of_the_selection_per_currency(self, finance, media):
        eur: dict[str, Any] = {"lines": [("1", "10.00")], "state": S.PENDING}
        make_invoice(account=AccountFactory(currency="EUR"), **eur)
        make_invoice(account=AccountFactory(currency="EUR"), lines=[("1", "5.25")], state=S.PAID)
        make_invoice(account=AccountFactory(currency="JPY"), lines=[("3", "1000")], state=S.FAILED)
        # neither a draft nor a cancelled invoice is money anyone owes
        make_invoice(account=AccountFactory(currency="EUR"), lines=[("1", "99")])
        make_invoice(account=AccountFactory(currency="EUR"), lines=[("1", "99")], state=S.CANCELLED)
        response = finance.get(CHANGELIST)
        totals = {row["currency"]: row for row in response.context["selection_totals"]}
        assert totals["EUR"]["total"] == "15.25" and totals["EUR"]["invoices"] == 2
        assert totals["JPY"]["total"] == "3,000"
        assert 'id="selection-totals"' in response.content.decode()

    def test_outstanding_is_every_unpaid_issued_state(self, finance, media):
        owed = [make_invoice(state=state) for state in (S.PENDING, S.UNPAID, S.FAILED)]
        for state in (S.OPEN, S.FINALIZED, S.PAID, S.CANCELLED):
            make_invoice(state=state)
        result = finance.get(CHANGELIST, {"outstanding": "yes"}).context["cl"].result_list
        assert sorted(result.values_list("pk", flat=True)) == sorted(i.pk for i in owed)
        result = finance.get(CHANGELIST, {"outstanding": "no"}).context["cl"].result_list
        assert len(result) == 4
        # "issued, not cancelled": what was invoiced, paid or not
        result = finance.get(CHANGELIST, {"outstanding": "issued"}).context["cl"].result_list
        assert sorted(result.values_list("state", flat=True)) == [
            "failed",
            "paid",
            "pending",
            "unpaid",
        ]

    def test_issue_and_due_date_ranges(self, finance, media):
        invoice = make_invoice(state=S.PENDING)
        issued, due = invoice.issued_on, invoice.due_on
        day = dt.timedelta(days=1)

        def listed(**params):
            cl = finance.get(CHANGELIST, params).context["cl"]
            return [row.pk for row in cl.result_list]

        assert listed(issued_on__gte=issued.isoformat()) == [invoice.pk]
        assert listed(issued_on__lte=(issued - day).isoformat()) == []
        both = {"due_on__gte": due.isoformat(), "due_on__lte": due.isoformat()}
        assert listed(**both) == [invoice.pk]
        assert listed(due_on__gte=(due + day).isoformat()) == []
        page = finance.get(CHANGELIST, {"due_on__gte": due.isoformat(), "currency": "USD"})
        body = page.content.decode()
        # the filter's form keeps the other filters and shows the chosen date
        assert f'value="{due.isoformat()}"' in body and 'name="currency" value="USD"' in body

    def test_a_bad_date_is_not_a_server_error(self, finance, media):
        response = finance.get(CHANGELIST, {"issued_on__gte": "yesterday"})
        assert response.status_code in (200, 302)

    def test_changelist_query_count_does_not_grow_with_rows(
        self, finance, media, django_assert_max_num_queries
    ):
        for _ in range(12):
            make_invoice(state=S.PENDING)
        with django_assert_max_num_queries(14):
            assert finance.get(CHANGELIST).status_code == 200


@pytest.mark.django_db
class TestChangeForm:
    def test_issued_invoice_is_read_only(self, finance, media):
        invoice = make_invoice(state=S.PENDING)
        response = finance.get(change_url(invoice))
        assert response.status_code == 200
        form = response.context["adminform"].form
        assert not form.fields  # every field read-only
        line_formset = response.context["inline_admin_formsets"][0]
        assert line_formset.formset.model is LineItem
        assert not line_formset.has_add_permission
        assert not line_formset.has_delete_permission
        # a forged POST changes nothing
        before = (invoice.period, invoice.cost, invoice.line_items.count())
        finance.post(
            change_url(invoice), {"period": "2026-01-01", "friendly_id": "2026-01-99999999"}
        )
        invoice.refresh_from_db()
        assert (invoice.period, invoice.cost, invoice.line_items.count()) == before

    def test_create_in_admin_goes_through_invoice_create(self, finance, media):
        account = AccountFactory()
        response = finance.post(
            reverse("admin:invoices_invoice_add"),
            {
                "account": account.pk,
                "period": "2026-11-17",
                **empty_inlines(),
            },
        )
        assert response.status_code == 302, response.content
        invoice = Invoice.objects.get(account=account)
        assert invoice.period == dt.date(2026, 11, 1)
        assert invoice.state == S.OPEN
        assert invoice.events.get().kind == InvoiceEvent.Kind.CREATED

    def test_deleted_account_cannot_be_billed(self, finance):
        from accounts.services import account_soft_delete

        account = account_soft_delete(account=AccountFactory())
        response = finance.post(
            reverse("admin:invoices_invoice_add"),
            {"account": account.pk, "period": "2026-11-01", **empty_inlines()},
        )
        assert response.status_code == 200
        assert "deleted" in str(response.context["adminform"].form.errors["account"])
        assert not Invoice.objects.exists()

    def test_edit_draft_adds_and_removes_lines_through_services(self, finance, media):
        account = AccountFactory(currency="EUR", vat_rate=Decimal("21"))
        invoice = make_invoice(account=account, lines=[("1", "100.00"), ("1", "5.00")])
        keep, drop = invoice.line_items.order_by("id")
        data = {
            "period": invoice.period.isoformat(),
            "friendly_id": "",
            **inline_management(total=3, initial=2),
            "line_items-0-id": keep.pk,
            "line_items-0-invoice": invoice.pk,
            "line_items-1-id": drop.pk,
            "line_items-1-invoice": invoice.pk,
            "line_items-1-DELETE": "on",
            "line_items-2-invoice": invoice.pk,
            "line_items-2-name": "Support",
            "line_items-2-description": "Priority support",
            "line_items-2-quantity": "3",
            "line_items-2-unit_price": "9.99",
            "line_items-2-type": "manual",
            **empty_readonly_inlines(),
        }
        response = finance.post(change_url(invoice), data)
        assert response.status_code == 302, response.context["errors"]
        invoice.refresh_from_db()
        names = list(invoice.line_items.values_list("name", flat=True))
        assert names == ["Item", "Support"]
        assert invoice.cost_without_vat == Decimal("129.97")
        assert invoice.vat_amount == Decimal("27.29")
        assert invoice.cost == Decimal("157.26")
        kinds = list(invoice.events.values_list("kind", "actor"))
        assert (InvoiceEvent.Kind.LINE_REMOVED, "staff:fin") in kinds
        assert (InvoiceEvent.Kind.LINE_ADDED, "staff:fin") in kinds

    def test_bad_line_is_a_field_error_and_nothing_is_written(self, finance, media):
        invoice = make_invoice(lines=[("1", "10.00")])
        line = invoice.line_items.get()
        data = {
            "period": "2026-01-01",
            "friendly_id": "",
            **inline_management(total=2, initial=1),
            "line_items-0-id": line.pk,
            "line_items-0-invoice": invoice.pk,
            "line_items-1-invoice": invoice.pk,
            "line_items-1-name": "Bad",
            "line_items-1-quantity": "0",
            "line_items-1-unit_price": "5",
            "line_items-1-type": "manual",
            **empty_readonly_inlines(),
        }
        response = finance.post(change_url(invoice), data)
        assert response.status_code == 200
        formset = response.context["inline_admin_formsets"][0].formset
        assert "must be greater than 0" in str(formset.errors[1]["quantity"])
        invoice.refresh_from_db()
        assert invoice.line_items.count() == 1
        assert invoice.period != dt.date(2026, 1, 1)

    def test_edit_period_and_number_through_invoice_update(self, finance, media):
        invoice = make_invoice(period=dt.date(2026, 10, 1))
        InvoiceCounter.objects.create(series="2026-09", last_number=800)
        data = {
            "period": "2026-09-15",
            "friendly_id": "2026-09-00000777",
            **inline_management(total=1, initial=1),
            "line_items-0-id": invoice.line_items.get().pk,
            "line_items-0-invoice": invoice.pk,
            **empty_readonly_inlines(),
        }
        response = finance.post(change_url(invoice), data)
        assert response.status_code == 302
        invoice.refresh_from_db()
        assert invoice.period == dt.date(2026, 9, 1)
        assert invoice.friendly_id == "2026-09-00000777"
        assert invoice.events.last().kind == InvoiceEvent.Kind.UPDATED

    @pytest.mark.parametrize("number", ["INV-1", "2026-13-00000001", "{series}-00000009"])
    def test_invalid_number_is_a_field_error(self, finance, media, number):
        invoice = make_invoice()
        data = {
            "period": invoice.period.isoformat(),
            # the last one is well formed but not reached by its series
            "friendly_id": number.format(series=f"{invoice.period:%Y-%m}"),
            **inline_management(total=1, initial=1),
            "line_items-0-id": invoice.line_items.get().pk,
            "line_items-0-invoice": invoice.pk,
            **empty_readonly_inlines(),
        }
        response = finance.post(change_url(invoice), data)
        assert response.status_code == 200
        assert "friendly_id" in response.context["adminform"].form.errors
        assert Invoice.objects.get(pk=invoice.pk).friendly_id is None
        assert Invoice.objects.get(pk=invoice.pk).friendly_id is None

    def test_only_open_invoices_can_be_deleted(self, superuser_client, media):
        draft = make_invoice()
        issued = make_invoice(state=S.PENDING)
        delete = lambda inv: reverse("admin:invoices_invoice_delete", args=[inv.pk])  # noqa: E731
        assert superuser_client.get(delete(issued)).status_code == 403
        response = superuser_client.post(delete(draft), {"post": "yes"})
        assert response.status_code == 302
        assert not Invoice.objects.filter(pk=draft.pk).exists()
        assert Invoice.objects.filter(pk=issued.pk).exists()

    def test_timeline_and_payments_are_shown_read_only(self, finance, media):
        invoice = make_invoice(state=S.PAID)
        response = finance.get(change_url(invoice))
        formsets = {f.formset.model: f for f in response.context["inline_admin_formsets"]}
        payments = formsets[PaymentTransaction]
        assert not payments.has_add_permission and not payments.has_change_permission
        # the timeline reads as sentences, one per event, not as a table of JSON
        assert InvoiceEvent not in formsets
        body = response.content.decode()
        assert body.count("<li><time>") == invoice.events.count()
        assert "moved it from Awaiting payment to Paid" in body

    def test_pdf_view_serves_the_stored_file(
        self, finance, media, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            invoice = make_invoice(state=S.PENDING)
        invoice.refresh_from_db()
        assert invoice.pdf.name.endswith(".pdf")
        response = finance.get(reverse("admin:invoices_invoice_pdf", args=[invoice.pk]))
        assert response.status_code == 200
        assert response["Content-Type"] == "application/pdf"
        body = b"".join(response.streaming_content)
        with invoice.pdf.open("rb") as stored:
            assert body == stored.read()


def inline_management(*, total: int, initial: int) -> dict:
    return {
        "line_items-TOTAL_FORMS": str(total),
        "line_items-INITIAL_FORMS": str(initial),
        "line_items-MIN_NUM_FORMS": "0",
        "line_items-MAX_NUM_FORMS": "1000",
    }


def empty_readonly_inlines() -> dict:
    data = {}
    for prefix in ("payment_transactions", "events"):
        data.update(
            {
                f"{prefix}-TOTAL_FORMS": "0",
                f"{prefix}-INITIAL_FORMS": "0",
                f"{prefix}-MIN_NUM_FORMS": "0",
                f"{prefix}-MAX_NUM_FORMS": "1000",
            }
        )
    return data


def empty_inlines() -> dict:
    return {**inline_management(total=0, initial=0), **empty_readonly_inlines()}


@pytest.mark.django_db
class TestPermissions:
    def test_auditor_sees_everything_but_gets_no_actions(self, auditor, media):
        invoice = make_invoice()
        response = auditor.get(CHANGELIST)
        assert response.status_code == 200
        assert response.context["action_form"] is None
        page = auditor.get(change_url(invoice))
        assert page.status_code == 200
        assert not page.context["adminform"].form.fields
        assert page.context["has_change_permission"] is False
        pdf = auditor.get(reverse("admin:invoices_invoice_pdf", args=[invoice.pk]))
        assert pdf.status_code == 200

    def test_auditor_cannot_act_or_change(self, auditor, media):
        invoice = make_invoice()
        response = act(auditor, "issue_invoices", [invoice])
        invoice.refresh_from_db()
        assert invoice.state == S.OPEN
        assert not any(m.startswith("Issued") for m in messages_of(response))
        assert auditor.post(change_url(invoice), {"period": "2026-01-01"}).status_code == 403
        assert auditor.get(reverse("admin:invoices_invoice_add")).status_code == 403

    def test_non_staff_is_redirected_to_login(self, client, django_user_model):
        user = django_user_model.objects.create_user("bob", password="bob-password-123")
        client.force_login(user)
        for url in (CHANGELIST, reverse("staff:dashboard")):
            response = client.get(url)
            assert response.status_code == 302
            assert "/admin/login/" in response["Location"]

    def test_anonymous_is_redirected_to_login(self, client):
        response = client.get(CHANGELIST)
        assert response.status_code == 302 and "/admin/login/" in response["Location"]

    def test_admin_index_links_the_dashboard(self, finance):
        response = finance.get(reverse("admin:index"))
        assert reverse("staff:dashboard").encode() in response.content


@pytest.mark.django_db
class TestCounting:
    def test_paginator_counts_exactly_on_small_lists(self, finance, media):
        for _ in range(3):
            make_invoice()
        response = finance.get(CHANGELIST)
        assert response.context["cl"].result_count == 3

    @pytest.mark.postgres
    def test_unfiltered_list_uses_the_planner_estimate(self, finance, media, monkeypatch):
        from billing.lib import paging

        make_invoice()
        monkeypatch.setattr(paging, "table_estimate", lambda model, using="default": 1_234_567)
        response = finance.get(CHANGELIST)
        assert response.context["cl"].result_count == 1_234_567
        # a filtered list below the cap is counted exactly
        response = finance.get(CHANGELIST + "?state__exact=open")
        assert response.context["cl"].result_count == 1

    @pytest.mark.postgres
    def test_filtered_list_over_the_cap_uses_the_query_estimate(self, media, monkeypatch):
        from billing.lib import paging

        make_invoice()
        make_invoice()
        monkeypatch.setattr(paging.EstimatedCountPaginator, "cap", 1)
        paginator = paging.EstimatedCountPaginator(Invoice.objects.filter(state="open"), 10)
        assert paginator.count >= 2
