"""The invoice admin: lists and filters, every action, read-only issued invoices,
draft editing through the services, downloads and permissions."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from invoices.models import Invoice, InvoiceCounter, InvoiceEvent, LineItem, PaymentTransaction
from invoices.tasks import invoice_render_pdf
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


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def finance_user(db, django_user_model):
    user = django_user_model.objects.create_user("fin", password="fin-password-123", is_staff=True)
    user.groups.add(Group.objects.get(name="Finance"))
    return user


@pytest.fixture
def auditor_user(db, django_user_model):
    user = django_user_model.objects.create_user("aud", password="aud-password-123", is_staff=True)
    user.groups.add(Group.objects.get(name="Auditor"))
    return user


@pytest.fixture
def finance(client, finance_user):
    client.force_login(finance_user)
    return client


@pytest.fixture
def auditor(client, auditor_user):
    client.force_login(auditor_user)
    return client


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
        assert "state-badge" in body and "Pending" in body
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
        make_invoice(account=AccountFactory(currency="EUR"), lines=[("1", "10.00")])
        make_invoice(account=AccountFactory(currency="EUR"), lines=[("1", "5.25")])
        make_invoice(account=AccountFactory(currency="JPY"), lines=[("3", "1000")])
        response = finance.get(CHANGELIST)
        totals = {row["currency"]: row for row in response.context["selection_totals"]}
        assert totals["EUR"]["total"] == "15.25" and totals["EUR"]["invoices"] == 2
        assert totals["JPY"]["total"] == "3,000"
        assert 'id="selection-totals"' in response.content.decode()

    def test_changelist_query_count_does_not_grow_with_rows(
        self, finance, media, django_assert_max_num_queries
    ):
        for _ in range(12):
            make_invoice(state=S.PENDING)
        with django_assert_max_num_queries(14):
            assert finance.get(CHANGELIST).status_code == 200


@pytest.mark.django_db
class TestActions:
    def test_finalize_then_issue(self, finance, media, django_capture_on_commit_callbacks):
        invoice = make_invoice()
        response = act(finance, "finalize_invoices", [invoice])
        assert "Finalized 1." in messages_of(response)
        invoice.refresh_from_db()
        assert invoice.state == S.FINALIZED and invoice.friendly_id
        with django_capture_on_commit_callbacks(execute=True):
            response = act(finance, "issue_invoices", [invoice])
        assert "Issued 1." in messages_of(response)
        invoice.refresh_from_db()
        assert invoice.state == S.PENDING and invoice.issued_on and invoice.pdf
        event = invoice.events.filter(kind=InvoiceEvent.Kind.TRANSITION).last()
        assert event.actor == "staff:fin"

    def test_refused_issue_is_reported_by_number(self, finance, media):
        good = make_invoice()
        cancelled = make_invoice(state=S.FINALIZED)
        cancelled = make_invoice_cancelled(cancelled)
        response = act(finance, "issue_invoices", [good, cancelled])
        [message] = messages_of(response)
        assert message == (
            f"Issued 1; 1 failed: {cancelled.friendly_id}: Cannot transition to pending"
        )
        cancelled.refresh_from_db()
        assert cancelled.state == S.CANCELLED

    def test_all_failed_is_an_error_message(self, finance, media):
        paid = make_invoice(state=S.PAID)
        response = act(finance, "cancel_invoices", [paid], apply="1", reason="typo")
        [message] = list(get_messages(response.wsgi_request))
        assert message.level_tag == "error"
        assert "Cancelled 0; 1 failed" in str(message)

    def test_charge_success_and_decline(self, finance, media):
        ok = make_invoice(state=S.PENDING)
        declined = make_invoice(
            account=AccountFactory(card_token="tok_chargeDeclined"), state=S.PENDING
        )
        response = act(finance, "charge_invoices", [ok, declined])
        [message] = messages_of(response)
        assert message.startswith("Charged 1; 1 failed: ")
        assert f"{declined.friendly_id}: Failed to charge the credit card." in message
        ok.refresh_from_db()
        declined.refresh_from_db()
        assert ok.state == S.PAID
        assert declined.state == S.UNPAID
        assert declined.payment_transactions.get().success is False

    def test_mark_paid_asks_for_a_reference_then_records_the_payment(self, finance, media):
        invoice = make_invoice(state=S.PENDING)
        # given the action chosen, the page asks for the bank reference
        page = act(finance, "mark_paid", [invoice])
        assert page.status_code == 200
        assert b'name="reference"' in page.content
        # a missing reference is asked again, nothing is written
        again = act(finance, "mark_paid", [invoice], apply="1", reference="")
        assert b"This field is required" in again.content
        invoice.refresh_from_db()
        assert invoice.state == S.PENDING
        # when confirmed with a reference
        done = act(
            finance, "mark_paid", [invoice], apply="1", reference="SEPA-778", method="bank_transfer"
        )
        assert "Marked paid 1." in messages_of(done)
        invoice.refresh_from_db()
        payment = invoice.payment_transactions.get()
        assert invoice.state == S.PAID
        assert (payment.reference, payment.method, payment.success) == (
            "SEPA-778",
            PaymentTransaction.Method.BANK_TRANSFER,
            True,
        )
        assert payment.amount == invoice.cost

    def test_cancel_with_reason(self, finance, media):
        invoice = make_invoice(state=S.PENDING)
        page = act(finance, "cancel_invoices", [invoice])
        assert b'name="reason"' in page.content
        response = act(finance, "cancel_invoices", [invoice], apply="1", reason="duplicate")
        assert "Cancelled 1." in messages_of(response)
        invoice.refresh_from_db()
        assert invoice.state == S.CANCELLED
        assert invoice.events.last().reason == "duplicate"

    def test_bulk_delete_is_not_offered(self, finance, superuser_client):
        response = superuser_client.get(CHANGELIST)
        choices = [name for name, _ in response.context["action_form"].fields["action"].choices]
        assert "delete_selected" not in choices
        assert {"issue_invoices", "mark_paid", "export_csv", "download_pdfs"} <= set(choices)

    def test_download_pdfs_as_zip(self, finance, media):
        issued = make_invoice(state=S.PENDING)
        invoice_render_pdf(issued.pk)  # what the commit of the issue runs
        draft = make_invoice()
        response = act(finance, "download_pdfs", [issued, draft])
        assert response["Content-Type"] == "application/zip"
        archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
        names = sorted(archive.namelist())
        assert names == sorted(
            [f"invoice-{issued.friendly_id}.pdf", f"invoice-draft-{draft.pk}.pdf"]
        )
        for name in names:
            assert archive.read(name).startswith(b"%PDF")
        issued.refresh_from_db()
        with issued.pdf.open("rb") as stored:
            assert archive.read(f"invoice-{issued.friendly_id}.pdf") == stored.read()

    def test_export_csv_streams_the_selection(self, finance, media):
        eur = AccountFactory(org_name="=cmd|' /C calc'!A0", currency="EUR")
        invoice = make_invoice(account=eur, lines=[("3", "0.10")], state=S.PENDING)
        make_invoice(state=S.PENDING)
        # "select all" across the filtered list: the export follows the filter
        response = finance.post(
            CHANGELIST + "?currency=EUR",
            {"action": "export_csv", "_selected_action": [invoice.pk], "select_across": "1"},
        )
        assert response.streaming
        assert response["Content-Type"] == "text/csv"
        assert "attachment" in response["Content-Disposition"]
        rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
        assert len(rows) == 1
        row = rows[0]
        assert row["number"] == invoice.friendly_id
        assert (row["subtotal"], row["total"], row["currency"]) == ("0.30", "0.30", "EUR")
        assert row["organisation"].startswith("'=")  # a formula is neutralised


def make_invoice_cancelled(invoice: Invoice) -> Invoice:
    from invoices import services

    services.invoice_cancel(invoice=invoice, actor="test")
    invoice.refresh_from_db()
    return invoice


@pytest.fixture
def superuser_client(client, staff_user):
    client.force_login(staff_user)
    return client


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
        events = formsets[InvoiceEvent]
        assert not events.has_add_permission and not events.has_change_permission
        assert len(events.formset.forms) == invoice.events.count()
        assert PaymentTransaction in formsets

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
