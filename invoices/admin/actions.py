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
from invoices.exceptions import InvoiceError
from invoices.export import invoice_csv_lines
from invoices.models import Invoice
from invoices.pdf import invoice_pdf_content, invoice_pdf_filename

State = Invoice.State

MAX_ZIP_INVOICES = 300


def _describe(invoice: Invoice) -> str:
    return (
        f"{invoice} — {invoice.account.org_name} — {invoice.get_state_display()} — "
        f"{invoice.cost} {invoice.currency}"
    )


def invoice_action(service, *, to_state: str, label: str, **options: Any) -> AdminAction:
    """An action moving each selected invoice to `to_state` through `service`;
    `label` names it on the page of one invoice the transition map lets it move."""
    action = service_action(
        service,
        subject="invoice",
        with_actor=True,
        errors=(InvoiceError,),
        applies=lambda invoice: invoice.can_transition_to(to_state),
        describe=_describe,
        select_related=("account",),
        **options,
    )
    # Read by the invoice page, which offers the moves its state allows.
    action.to_state = to_state  # type: ignore[attr-defined]
    action.label = label  # type: ignore[attr-defined]
    return action


finalize_invoices = invoice_action(
    services.invoice_finalize,
    label="Finalize",
    to_state=State.FINALIZED,
    description="Finalize selected invoices",
    done="Finalized",
)
issue_invoices = invoice_action(
    services.invoice_issue,
    label="Issue",
    to_state=State.PENDING,
    description="Issue selected invoices",
    done="Issued",
)
charge_invoices = invoice_action(
    services.invoice_charge,
    label="Charge the card on file",
    to_state=State.PAID,
    description="Charge selected invoices (card on file)",
    done="Charged",
)
mark_paid = invoice_action(
    services.invoice_mark_paid,
    label="Record a bank payment",
    to_state=State.PAID,
    form=MarkPaidForm,
    description="Record a bank payment (mark paid)",
    done="Marked paid",
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
    title="Create a credit note",
    button="Create credit note",
)
# Offered on the page of an issued invoice (see InvoiceAdmin.allowed_actions).
create_credit_note.label = "Create credit note"  # type: ignore[attr-defined]
create_credit_note.offered = lambda invoice: invoice.state in Invoice.ISSUED_STATES  # type: ignore[attr-defined]
cancel_invoices = invoice_action(
    services.invoice_cancel,
    label="Cancel",
    to_state=State.CANCELLED,
    form=CancelForm,
    description="Cancel selected invoices",
    done="Cancelled",
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
