"""The invoice list's actions: each one a service per selected invoice, refusals
reported by number, forms that ask for the service's parameters."""

from __future__ import annotations

import csv
import io
import zipfile
from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.messages import get_messages
from django.urls import reverse

from invoices import services
from invoices.models import Invoice, InvoiceEvent, PaymentTransaction
from invoices.tasks import invoice_render_pdf
from tests.factories import AccountFactory, make_invoice

S = Invoice.State
CHANGELIST = reverse("admin:invoices_invoice_changelist")


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def act(client, action: str, invoices, **extra):
    data = {"action": action, "_selected_action": [inv.pk for inv in invoices], **extra}
    return client.post(CHANGELIST, data, follow=True)


@pytest.mark.django_db
class TestActions:
    def test_finalize_then_issue(self, finance, media, django_capture_on_commit_callbacks):
        invoice = make_invoice()
        response = act(finance, "finalize_invoices", [invoice])
        invoice.refresh_from_db()
        org = invoice.account.org_name
        assert messages_of(response) == [f"Finalized invoice {invoice.friendly_id} of {org}."]
        assert invoice.state == S.FINALIZED and invoice.friendly_id
        with django_capture_on_commit_callbacks(execute=True):
            response = act(finance, "issue_invoices", [invoice])
        invoice.refresh_from_db()
        assert messages_of(response) == [
            f"Issued invoice {invoice.friendly_id} to {org}, due {invoice.due_on}."
        ]
        assert invoice.state == S.PENDING and invoice.issued_on and invoice.pdf
        event = invoice.events.filter(kind=InvoiceEvent.Kind.TRANSITION).last()
        assert event.actor == "staff:fin"

    def test_refused_issue_is_reported_by_number(self, finance, media):
        good = make_invoice()
        cancelled = make_invoice(state=S.FINALIZED)
        cancelled = make_invoice_cancelled(cancelled)
        response = act(finance, "issue_invoices", [good, cancelled])
        [message] = messages_of(response)
        good.refresh_from_db()
        assert message == (
            f"Issued 1 ({good.friendly_id}); 1 failed: "
            f"{cancelled.friendly_id}: Cancelled, so it cannot be issued"
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
        assert message.startswith(f"Charged 1 ({ok.friendly_id}); 1 failed: ")
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
        invoice.refresh_from_db()
        assert messages_of(done) == [
            f"Recorded {invoice.account.org_name}'s payment of USD 100.00: "
            f"invoice {invoice.friendly_id} is paid."
        ]
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
        invoice.refresh_from_db()
        assert messages_of(response) == [
            f"Cancelled invoice {invoice.friendly_id} of {invoice.account.org_name}."
        ]
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
    services.invoice_cancel(invoice=invoice, actor="test")
    invoice.refresh_from_db()
    return invoice


@pytest.mark.django_db
class TestPaymentsAndCredits:
    def test_mark_paid_with_an_amount_and_a_date_records_a_part(self, finance, media):
        invoice = make_invoice(state=S.UNPAID)
        page = act(finance, "mark_paid", [invoice])
        assert b'name="amount"' in page.content and b'name="paid_on"' in page.content
        done = act(
            finance,
            "mark_paid",
            [invoice],
            apply="1",
            reference="SEPA-1",
            method="bank_transfer",
            amount="30.00",
            paid_on="2026-11-02",
        )
        assert (
            messages_of(done)
            == [f"Recorded Org 0's payment: USD 70.00 is still due on invoice {invoice}."]
            or "70.00 is still due" in messages_of(done)[0]
        )
        invoice.refresh_from_db()
        payment = invoice.payment_transactions.get()
        assert (invoice.state, invoice.amount_due()) == (S.UNPAID, Decimal("70"))
        assert (payment.action, payment.amount, str(payment.paid_on)) == (
            "payment",
            Decimal("30"),
            "2026-11-02",
        )
        page = finance.get(reverse("admin:invoices_invoice_change", args=[invoice.pk]))
        assert b"Amount due" in page.content and b"70.00" in page.content

    def test_create_credit_note_from_the_invoice(self, finance, media):
        invoice = make_invoice(state=S.PAID)
        done = act(
            finance, "create_credit_note", [invoice], apply="1", reason="goodwill", amount="15"
        )
        assert messages_of(done) == [f"Created a credit note on invoice {invoice}."]
        note = invoice.credit_notes.get()
        assert (note.cost, note.amount_to_balance) == (Decimal("15"), Decimal("15"))
        page = finance.get(reverse("admin:invoices_invoice_change", args=[invoice.pk]))
        assert note.number.encode() in page.content


@pytest.mark.django_db
class TestTransitionMap:
    """Which moves the admin offers comes from Invoice.can_transition_to."""

    def change_page(self, client, invoice):
        return client.get(reverse("admin:invoices_invoice_change", args=[invoice.pk]))

    @pytest.mark.parametrize(
        ("state", "offered"),
        [
            (S.OPEN, ["finalize_invoices", "issue_invoices", "cancel_invoices"]),
            (S.FINALIZED, ["issue_invoices", "cancel_invoices"]),
            (S.PENDING, ["charge_invoices", "mark_paid", "create_credit_note", "cancel_invoices"]),
            (S.PAID, ["create_credit_note"]),
        ],
    )
    def test_invoice_page_offers_the_moves_its_state_allows(self, finance, media, state, offered):
        invoice = make_invoice(state=state)
        response = self.change_page(finance, invoice)
        names = [name for name, _, _ in response.context["allowed_actions"]]
        assert names == offered
        for name in offered:
            assert f'name="action" value="{name}"'.encode() in response.content

    def test_auditor_is_offered_no_move(self, auditor, media):
        response = self.change_page(auditor, make_invoice())
        assert response.context["allowed_actions"] == []

    def test_a_move_from_the_invoice_page_goes_through_the_service(self, finance, media):
        invoice = make_invoice()
        url = reverse("admin:invoices_invoice_act", args=[invoice.pk, "finalize_invoices"])
        response = finance.post(url, {"action": "finalize_invoices"}, follow=True)
        invoice.refresh_from_db()
        assert invoice.state == S.FINALIZED
        # back on the invoice's page, told which invoice and which number
        assert response.redirect_chain[-1][0] == reverse(
            "admin:invoices_invoice_change", args=[invoice.pk]
        )
        assert messages_of(response) == [
            f"Finalized invoice {invoice.friendly_id} of {invoice.account.org_name}."
        ]
        # and it is in Recent actions
        entry = LogEntry.objects.get(object_id=str(invoice.pk))
        assert entry.get_change_message() == "Finalize selected invoices"

    def test_cancel_from_the_invoice_page_asks_for_a_reason(self, finance, media):
        invoice = make_invoice(state=S.PENDING)
        url = reverse("admin:invoices_invoice_act", args=[invoice.pk, "cancel_invoices"])
        page = finance.post(url, {"action": "cancel_invoices"})
        assert page.status_code == 200 and b'name="reason"' in page.content
        done = finance.post(
            url, {"action": "cancel_invoices", "apply": "1", "reason": "ordered twice"}, follow=True
        )
        invoice.refresh_from_db()
        assert invoice.state == S.CANCELLED
        assert invoice.events.last().reason == "ordered twice"
        assert f"Cancelled invoice {invoice.friendly_id}" in messages_of(done)[0]
        assert "reason: ordered twice" in LogEntry.objects.get().get_change_message()

    def test_an_action_the_state_refuses_is_reported_in_words(self, finance, media):
        paid = make_invoice(state=S.PAID)
        url = reverse("admin:invoices_invoice_act", args=[paid.pk, "issue_invoices"])
        done = finance.post(url, {"action": "issue_invoices"}, follow=True)
        assert messages_of(done) == [
            f"Issued 0; 1 failed: {paid.friendly_id}: Paid, so it cannot be issued"
        ]

    def test_auditor_cannot_move_an_invoice_from_its_page(self, auditor, media):
        invoice = make_invoice()
        url = reverse("admin:invoices_invoice_act", args=[invoice.pk, "issue_invoices"])
        assert auditor.post(url, {"action": "issue_invoices"}).status_code == 404
        invoice.refresh_from_db()
        assert invoice.state == S.OPEN

    def test_unknown_or_non_moving_action_is_not_found(self, finance, media):
        invoice = make_invoice()
        for name in ("nope", "export_csv"):
            url = reverse("admin:invoices_invoice_act", args=[invoice.pk, name])
            assert finance.post(url, {"action": name}).status_code == 404

    def test_confirmation_page_marks_what_the_map_refuses(self, finance, media):
        pending = make_invoice(state=S.PENDING)
        paid = make_invoice(state=S.PAID)
        page = act(finance, "cancel_invoices", [pending, paid])
        rows = {row["pk"]: row["refused"] for row in page.context["rows"]}
        assert rows == {pending.pk: False, paid.pk: True}
        assert page.content.count(b'class="refused"') == 1
        # the service still decides: the paid one is reported, the other cancelled
        done = act(finance, "cancel_invoices", [pending, paid], apply="1", reason="dup")
        [message] = messages_of(done)
        pending.refresh_from_db()
        assert message == (
            f"Cancelled 1 ({pending.friendly_id}); 1 failed: "
            f"{paid.friendly_id}: Paid, so it cannot be cancelled"
        )


@pytest.mark.django_db
class TestHostileParameters:
    @pytest.mark.parametrize("query", ["?account=²", "?account=٣", "?q=²", "?month=２０２６-01"])
    def test_non_ascii_digits_are_not_a_server_error(self, finance, media, query):
        make_invoice()
        response = finance.get(CHANGELIST + query)
        assert response.status_code in (200, 302)
