"""The invoice list's actions. Each state change is one service, turned into an
action by `service_action`; which invoices it may move is the model's transition
map, and the service has the last word."""

from __future__ import annotations

import tempfile
import zipfile
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import FileResponse, StreamingHttpResponse
from django.utils import timezone

from billing.lib.admin import AdminAction, service_action
from invoices import services
from invoices.admin.forms import CancelForm, CreditNoteForm, MarkPaidForm
from invoices.exceptions import InvalidInvoiceTransition, InvoiceError, InvoiceNotChargeable
from invoices.export import invoice_csv_lines
from invoices.models import Invoice
from invoices.pdf import format_amount, invoice_pdf_content, invoice_pdf_filename

State = Invoice.State

MAX_ZIP_INVOICES = 300


def _describe(invoice: Invoice) -> str:
    return (
        f"{invoice} — {invoice.account.org_name} — {invoice.get_state_display()} — "
        f"{_amount(invoice)}"
    )


def _refusal(verb: str):
    """A refused move said in the clerk's words: "Paid, so it cannot be cancelled"."""

    def refusal(invoice: Invoice, exc: Exception) -> str:
        if isinstance(exc, InvalidInvoiceTransition | InvoiceNotChargeable):
            return f"{invoice.get_state_display()}, so it cannot be {verb}"
        return getattr(exc, "message", None) or str(exc)

    return refusal


def invoice_action(service, *, to_state: str, label: str, verb: str, **options: Any) -> AdminAction:
    """An action moving each selected invoice to `to_state` through `service`;
    `label` names it on the page of one invoice the transition map lets it move,
    `verb` (past participle) says what a refusal could not do."""
    action = service_action(
        service,
        subject="invoice",
        with_actor=True,
        errors=(InvoiceError,),
        applies=lambda invoice: invoice.can_transition_to(to_state),
        describe=_describe,
        refusal=_refusal(verb),
        select_related=("account",),
        **options,
    )
    # Read by the invoice page, which offers the moves its state allows.
    action.to_state = to_state  # type: ignore[attr-defined]
    action.label = label  # type: ignore[attr-defined]
    return action


def _amount(invoice: Invoice) -> str:
    return f"{invoice.currency} {format_amount(invoice.cost, invoice.currency)}"


finalize_invoices = invoice_action(
    services.invoice_finalize,
    label="Finalize",
    verb="finalized",
    to_state=State.FINALIZED,
    description="Finalize selected invoices",
    done="Finalized",
    done_one=lambda inv: f"Finalized invoice {inv} of {inv.account.org_name}",
)
issue_invoices = invoice_action(
    services.invoice_issue,
    label="Issue",
    verb="issued",
    to_state=State.PENDING,
    description="Issue selected invoices",
    done="Issued",
    done_one=lambda inv: f"Issued invoice {inv} to {inv.account.org_name}, due {inv.due_on}",
)
charge_invoices = invoice_action(
    services.invoice_charge,
    label="Charge the card on file",
    verb="charged",
    to_state=State.PAID,
    description="Charge selected invoices (card on file)",
    done="Charged",
    done_one=lambda inv: (
        f"Charged {_amount(inv)} to {inv.account.org_name}'s card for invoice {inv}"
    ),
)


def _payment_recorded(inv: Invoice) -> str:
    if inv.state == State.PAID:
        return f"Recorded {inv.account.org_name}'s payment of {_amount(inv)}: invoice {inv} is paid"
    due = format_amount(inv.amount_due(), inv.currency)
    return (
        f"Recorded {inv.account.org_name}'s payment: {inv.currency} {due} is still due on "
        f"invoice {inv}"
    )


# "Record payment" goes through invoice_mark_paid: in full (what is due) when no
# amount is given, else the amount, which may leave part of the invoice due.
mark_paid = invoice_action(
    services.invoice_mark_paid,
    label="Record payment",
    verb="marked paid",
    to_state=State.PAID,
    form=MarkPaidForm,
    description="Record a payment (mark paid)",
    done="Marked paid",
    done_one=_payment_recorded,
    title="Record a payment",
    button="Mark paid",
)
create_credit_note = service_action(
    services.credit_note_create,
    subject="invoice",
    with_actor=True,
    errors=(InvoiceError,),
    applies=lambda invoice: invoice.state in Invoice.ISSUED_STATES,
    describe=_describe,
    select_related=("account",),
    form=CreditNoteForm,
    description="Create a credit note",
    done="Credited",
    done_one=lambda inv: f"Created a credit note on invoice {inv}",
    title="Create a credit note",
    button="Create credit note",
)
# Offered on the page of an issued invoice (see InvoiceAdmin.allowed_actions).
create_credit_note.label = "Create credit note"  # type: ignore[attr-defined]
create_credit_note.offered = lambda invoice: invoice.state in Invoice.ISSUED_STATES  # type: ignore[attr-defined]
cancel_invoices = invoice_action(
    services.invoice_cancel,
    label="Cancel…",
    verb="cancelled",
    to_state=State.CANCELLED,
    form=CancelForm,
    description="Cancel selected invoices",
    done="Cancelled",
    done_one=lambda inv: f"Cancelled invoice {inv} of {inv.account.org_name}",
    title="Cancel invoices",
    button="Cancel these invoices",
)


@admin.action(description="Download PDFs (ZIP)", permissions=["change"])
def download_pdfs(model_admin, request, queryset: QuerySet[Invoice]):
    count = queryset.count()
    if count > MAX_ZIP_INVOICES:
        model_admin.message_user(
            request,
            f"Select at most {MAX_ZIP_INVOICES} invoices for one ZIP ({count:,} selected).",
            messages.ERROR,
        )
        return None
    # Spooled: small archives stay in memory, big ones go to a temporary file.
    archive = tempfile.SpooledTemporaryFile(max_size=32 * 1024 * 1024)
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for invoice in queryset.select_related("account").order_by("id"):
            bundle.writestr(invoice_pdf_filename(invoice), invoice_pdf_content(invoice))
    archive.seek(0)
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    return FileResponse(
        archive,
        as_attachment=True,
        filename=f"invoices-{stamp}.zip",
        content_type="application/zip",
    )


@admin.action(description="Export CSV", permissions=["change"])
def export_csv(model_admin, request, queryset: QuerySet[Invoice]):
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response = StreamingHttpResponse(invoice_csv_lines(queryset), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="invoices-{stamp}.csv"'
    return response
