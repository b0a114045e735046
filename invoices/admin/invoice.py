"""The invoice page and list of the finance workspace.

Every change made here goes through invoices.services, exactly as the APIs do:
the admin never saves an invoice or a line itself. Actions need the change
permission (the Finance group); the Auditor group sees everything read-only.
Lists are built for a million invoices: no exact counts on big lists, filters
that hit indexes, related rows fetched in bulk.
"""

from __future__ import annotations

import re
from typing import Any

from django.contrib import admin, messages
from django.db.models import Count, Sum
from django.http import Http404
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from accounts.models import Account
from billing.lib.admin import staff_actor
from billing.lib.months import month_start
from billing.lib.paging import EstimatedCountPaginator
from invoices import services
from invoices.admin import actions as invoice_actions
from invoices.admin.display import party_block, plain_number, timeline_html
from invoices.admin.filters import (
    AccountFilter,
    CurrencyFilter,
    DateRangeFilter,
    MonthFilter,
    OutstandingFilter,
    OverdueFilter,
    is_id,
)
from invoices.admin.forms import InvoiceForm
from invoices.admin.inlines import CreditNoteInline, LineItemInline, PaymentTransactionInline
from invoices.delivery.admin import NotificationInline, revoke_hosted_links
from invoices.exceptions import InvoiceError
from invoices.models import Invoice, LineItem
from invoices.pdf import format_amount, invoice_pdf_response

State = Invoice.State

# Above this many rows the per-currency totals would scan too much on each page view.
MAX_TOTALS_ROWS = 200_000

STATE_COLOURS: dict[str, str] = {
    State.OPEN: "#6b7280",
    State.FINALIZED: "#2563eb",
    State.PENDING: "#b26a00",
    State.UNPAID: "#c2410c",
    State.PAID: "#2e7d32",
    State.FAILED: "#b3261e",
    State.CANCELLED: "#52525b",
}
_NUMBER_PREFIX_RE = re.compile(r"^\d{4}(-\d{0,8}){0,2}$")


def state_badge(state: str, label: str) -> str:
    return format_html(
        '<span class="state-badge" style="background:{};color:#fff;padding:1px 7px;'
        'border-radius:8px;font-size:11px;white-space:nowrap">{}</span>',
        STATE_COLOURS.get(state, "#6b7280"),
        label,
    )


@admin.register(Invoice)
class InvoiceAdmin(admin.ModelAdmin):
    form = InvoiceForm
    list_display = (
        "number",
        "account_link",
        "state_label",
        "period_month",
        "issued",
        "due",
        "total",
    )
    list_display_links = ("number",)
    list_filter = (
        OutstandingFilter,
        OverdueFilter,
        "state",
        MonthFilter,
        CurrencyFilter,
        ("issued_on", DateRangeFilter),
        ("due_on", DateRangeFilter),
        AccountFilter,
    )
    search_fields = ("friendly_id", "account__org_name", "account__billing_email")
    search_help_text = "An invoice number (or its start), an organisation or an e-mail address."
    list_select_related = ("account",)
    list_per_page = 50
    show_full_result_count = False
    # Facet counts are one COUNT per filter choice: far too many on a big table.
    show_facets = admin.ShowFacets.NEVER
    paginator = EstimatedCountPaginator
    autocomplete_fields = ("account",)
    # The event log is shown as sentences (`timeline`), not as a table of rows.
    inlines = (LineItemInline, PaymentTransactionInline, CreditNoteInline, NotificationInline)
    actions = (
        "finalize_invoices",
        "issue_invoices",
        "charge_invoices",
        "mark_paid",
        "create_credit_note",
        "cancel_invoices",
        "download_pdfs",
        "export_csv",
        revoke_hosted_links,
    )
    finalize_invoices = invoice_actions.finalize_invoices
    issue_invoices = invoice_actions.issue_invoices
    charge_invoices = invoice_actions.charge_invoices
    mark_paid = invoice_actions.mark_paid
    create_credit_note = invoice_actions.create_credit_note
    cancel_invoices = invoice_actions.cancel_invoices
    download_pdfs = invoice_actions.download_pdfs
    export_csv = invoice_actions.export_csv
    change_list_template = "admin/invoices/invoice/change_list.html"
    change_form_template = "admin/invoices/invoice/change_form.html"

    # The invoice page, as a clerk reads it: what it is, what it costs, when, who.
    detail_fieldsets = (
        (
            "Amounts",
            {
                "fields": (
                    ("subtotal", "vat", "total"),
                    ("vat_rate_shown", "vat_code_shown"),
                    (
                        "amount_paid_shown",
                        "amount_credited_shown",
                        "credit_applied_shown",
                        "amount_due_shown",
                    ),
                )
            },
        ),
        (
            "Dates",
            {
                "fields": (
                    ("issued_on", "due_on", "paid_at"),
                    ("finalized_at", "cancelled_at"),
                    ("charge_attempts", "last_charge_attempt_at"),
                    ("created_at", "updated_at"),
                )
            },
        ),
        ("Buyer and seller", {"fields": (("buyer", "seller"),)}),
        ("Timeline", {"fields": ("timeline",)}),
    )
    detail_fields = (
        "state_label",
        "creation_type",
        "currency",
        "pdf_link",
        "vat_rate_shown",
        "vat_code_shown",
        "tax_treatment",
        "tax_category",
        "tax_mention",
        "tax_exemption_reason",
        "seller_country_code",
        "buyer_country_code",
        "subtotal",
        "vat",
        "total",
        "amount_paid_shown",
        "amount_credited_shown",
        "credit_applied_shown",
        "amount_due_shown",
        "issued_on",
        "due_on",
        "paid_at",
        "finalized_at",
        "cancelled_at",
        "charge_attempts",
        "last_charge_attempt_at",
        "created_at",
        "updated_at",
        "buyer",
        "seller",
        "timeline",
    )

    # -- columns

    @admin.display(description="number", ordering="friendly_id")
    def number(self, invoice: Invoice) -> str:
        return invoice.friendly_id or f"Draft #{invoice.pk}"

    @admin.display(description="account", ordering="account__org_name")
    def account_link(self, invoice: Invoice) -> str:
        return format_html(
            '<a href="?account={}">{}</a>', invoice.account_id, invoice.account.org_name
        )

    @admin.display(description="state", ordering="state")
    def state_label(self, invoice: Invoice) -> str:
        return state_badge(invoice.state, invoice.get_state_display())

    @admin.display(description="period", ordering="period")
    def period_month(self, invoice: Invoice) -> str:
        return invoice.period.strftime("%Y-%m")

    @admin.display(description="issued", ordering="issued_on")
    def issued(self, invoice: Invoice) -> str:
        return invoice.issued_on.isoformat() if invoice.issued_on else "—"

    @admin.display(description="due", ordering="due_on")
    def due(self, invoice: Invoice) -> str:
        return invoice.due_on.isoformat() if invoice.due_on else "—"

    @admin.display(description="total", ordering="cost")
    def total(self, invoice: Invoice) -> str:
        return f"{invoice.currency} {format_amount(invoice.cost, invoice.currency)}"

    @admin.display(description="subtotal")
    def subtotal(self, invoice: Invoice) -> str:
        return f"{invoice.currency} {format_amount(invoice.cost_without_vat, invoice.currency)}"

    @admin.display(description="VAT")
    def vat(self, invoice: Invoice) -> str:
        return f"{invoice.currency} {format_amount(invoice.vat_amount, invoice.currency)}"

    @admin.display(description="VAT rate")
    def vat_rate_shown(self, invoice: Invoice) -> str:
        return f"{plain_number(invoice.vat_rate)} %" if invoice.vat_rate is not None else "—"

    @admin.display(description="VAT code")
    def vat_code_shown(self, invoice: Invoice) -> str:
        return invoice.vat_code or "—"

    @admin.display(description="amount paid")
    def amount_paid_shown(self, invoice: Invoice) -> str:
        return format_amount(invoice.amount_paid, invoice.currency)

    @admin.display(description="amount credited")
    def amount_credited_shown(self, invoice: Invoice) -> str:
        return format_amount(invoice.amount_credited, invoice.currency)

    @admin.display(description="credit applied")
    def credit_applied_shown(self, invoice: Invoice) -> str:
        return format_amount(invoice.credit_applied, invoice.currency)

    @admin.display(description="amount due")
    def amount_due_shown(self, invoice: Invoice) -> str:
        return format_amount(invoice.amount_due(), invoice.currency)

    @admin.display(description="PDF")
    def pdf_link(self, invoice: Invoice) -> str:
        if invoice.pk is None:
            return "—"
        url = reverse("admin:invoices_invoice_pdf", args=[invoice.pk])
        if invoice.serves_stored_pdf:
            note = "stored" if invoice.pdf else "rendering after issue; shown live until stored"
        else:
            note = "rendered now, watermarked"
        return format_html('<a href="{}">Download PDF</a> ({})', url, note)

    @admin.display(description="buyer")
    def buyer(self, invoice: Invoice) -> str:
        if not invoice.buyer_details and invoice.account_id:
            return format_html(
                "{}<br><span class='help'>Frozen from the account when the invoice is "
                "issued.</span>",
                invoice.account.org_name,
            )
        return party_block(invoice.buyer_details)

    @admin.display(description="seller")
    def seller(self, invoice: Invoice) -> str:
        return party_block(invoice.seller_details, seller=True)

    @admin.display(description="what happened")
    def timeline(self, invoice: Invoice) -> str:
        return timeline_html(invoice)

    # -- queryset and search

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("account")

    def get_search_results(self, request, queryset, search_term):
        """Numbers by prefix (index on friendly_id), names and e-mails through the small
        account table, so a search never scans the invoice table with LIKE '%…%'."""
        term = search_term.strip()
        if not term:
            return queryset, False
        if _NUMBER_PREFIX_RE.match(term):
            return queryset.filter(friendly_id__startswith=term), False
        if is_id(term):
            return queryset.filter(pk=int(term)), False
        accounts = Account.objects.filter(org_name__icontains=term) | Account.objects.filter(
            billing_email__icontains=term
        )
        return queryset.filter(account__in=accounts.values("pk")), False

    # -- the change form

    def get_inlines(self, request, obj):
        # Only an issued invoice has credit notes: the add and draft pages go without.
        if obj is None or not obj.is_issued:
            return [inline for inline in self.inlines if inline is not CreditNoteInline]
        return self.inlines

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return ((None, {"fields": ("account", "period")}),)
        head = (
            None,
            {
                "fields": (
                    ("friendly_id", "state_label"),
                    ("account", "period"),
                    ("currency", "creation_type"),
                    "pdf_link",
                )
            },
        )
        return (head, *self.detail_fieldsets)

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is not None and not obj.is_editable:
            # Nothing is typed on a read-only page: no "leave empty…" advice under it.
            kwargs["help_texts"] = {}
        return super().get_form(request, obj, change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        if obj.is_editable:
            return ("account", *self.detail_fields)
        # Issued or cancelled: every field, for the books.
        return ("account", "period", "friendly_id", *self.detail_fields)

    def get_changeform_initial_data(self, request):
        initial: dict[str, Any] = super().get_changeform_initial_data(request)
        initial.setdefault("period", month_start(timezone.now().date()))
        return initial

    def has_delete_permission(self, request, obj=None) -> bool:
        # Only a draft can be deleted (invoice_delete); anything else is cancelled.
        if obj is not None and obj.state != State.OPEN:
            return False
        return super().has_delete_permission(request, obj)

    def allowed_actions(self, request, invoice: Invoice) -> list[tuple[str, str]]:
        """The state-changing actions the transition map allows from this invoice's state."""
        offered = self.get_actions(request)
        allowed = []
        for name, (func, _, _) in offered.items():
            to_state = getattr(func, "to_state", None)
            offer = getattr(func, "offered", None)
            if (to_state is not None and invoice.can_transition_to(to_state)) or (
                offer is not None and offer(invoice)
            ):
                allowed.append((name, func.label))
        return allowed

    def change_view(self, request, object_id, form_url="", extra_context=None):
        invoice = self.get_object(request, object_id)
        extra_context = dict(extra_context or {})
        if invoice is not None:
            extra_context["allowed_actions"] = [
                (name, label, reverse("admin:invoices_invoice_act", args=[invoice.pk, name]))
                for name, label in self.allowed_actions(request, invoice)
            ]
        if invoice is not None and not invoice.is_editable:
            # Issued or cancelled: nothing on the page can be saved, so offer no Save,
            # and call the page what it is.
            extra_context.update(
                title=f"View invoice {invoice}",
                show_save=False,
                show_save_and_continue=False,
                show_save_and_add_another=False,
            )
        elif invoice is not None and "title" not in extra_context:
            extra_context["title"] = (
                f"Edit finalized invoice {invoice}"
                if invoice.friendly_id
                else f"Edit draft #{invoice.pk}"
            )
        return super().change_view(request, object_id, form_url, extra_context)

    def action_view(self, request, object_id, name):
        """One of the list's actions on this invoice alone, from a button on its page.

        The action is the list's own (same service, same form, same report); only
        where the clerk lands afterwards differs: back on the invoice.
        """
        invoice = self.get_object(request, object_id)
        if invoice is None:
            raise Http404("No such invoice.")
        page = reverse("admin:invoices_invoice_change", args=[invoice.pk])
        offered = self.get_actions(request)
        if name not in offered or (
            getattr(offered[name][0], "to_state", None) is None
            and getattr(offered[name][0], "offered", None) is None
        ):
            raise Http404("No such action.")
        if request.method != "POST":
            return redirect(page)
        func = offered[name][0]
        response = func(self, request, self.get_queryset(request).filter(pk=invoice.pk))
        return response if response is not None else redirect(page)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except InvoiceError as exc:
            # The admin's transaction rolled back: nothing of this save was kept.
            field = f" ({exc.field})" if exc.field != "base" else ""
            self.message_user(request, f"Not saved{field}: {exc.message}", messages.ERROR)
            return redirect(request.get_full_path())

    def save_model(self, request, obj, form, change):
        actor = staff_actor(request)
        if not change:
            created = services.invoice_create(
                account=form.cleaned_data["account"],
                period=form.cleaned_data["period"],
                actor=actor,
            )
            obj.__dict__.update(created.__dict__)
            return
        if not obj.is_editable:
            return
        kwargs = {}
        if "period" in form.changed_data:
            kwargs["period"] = form.cleaned_data["period"]
        if "friendly_id" in form.changed_data and form.cleaned_data.get("friendly_id"):
            kwargs["friendly_id"] = form.cleaned_data["friendly_id"]
        if kwargs:
            services.invoice_update(invoice=obj, actor=actor, **kwargs)

    def save_formset(self, request, form, formset, change):
        # The admin's change message reads these; the services do the saving.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        if formset.model is not LineItem:
            return  # payments and events are read-only here
        invoice = form.instance
        actor = staff_actor(request)
        if not Invoice.objects.get(pk=invoice.pk).is_editable:
            return
        for line_form in formset.deleted_forms:
            if line_form.instance.pk:
                services.line_item_remove(line_item=line_form.instance, actor=actor)
                formset.deleted_objects.append(line_form.instance)
        for line_form in formset.forms:
            if line_form.instance.pk or line_form in formset.deleted_forms:
                continue
            if not line_form.has_changed():
                continue
            data = line_form.cleaned_data
            line = services.line_item_add(
                invoice=invoice,
                name=data["name"],
                description=data.get("description") or "",
                quantity=data["quantity"],
                unit_price=data["unit_price"],
                type=data.get("type") or LineItem.Type.MANUAL,
                actor=actor,
            )
            formset.new_objects.append(line)
        services.invoice_recompute(invoice=invoice, actor=actor)

    def get_deleted_objects(self, objs, request):
        # A draft's lines and events go with it (invoice_delete); they need no
        # delete permission of their own, since nobody deletes them directly.
        to_delete, model_count, _, protected = super().get_deleted_objects(objs, request)
        return to_delete, model_count, set(), protected

    def delete_model(self, request, obj):
        services.invoice_delete(invoice=obj, actor=staff_actor(request))

    def delete_queryset(self, request, queryset):
        for invoice in queryset:
            services.invoice_delete(invoice=invoice, actor=staff_actor(request))

    def get_actions(self, request):
        actions = super().get_actions(request)
        # A bulk delete would bypass invoice_delete's "drafts only" rule.
        actions.pop("delete_selected", None)
        return actions

    # -- extra views

    def get_urls(self):
        urls = super().get_urls()
        custom = [
            path(
                "<path:object_id>/pdf/",
                self.admin_site.admin_view(self.pdf_view),
                name="invoices_invoice_pdf",
            ),
            path(
                "<path:object_id>/act/<str:name>/",
                self.admin_site.admin_view(self.action_view),
                name="invoices_invoice_act",
            ),
        ]
        return custom + urls

    def pdf_view(self, request, object_id):
        invoice = self.get_object(request, object_id)
        if invoice is None:
            raise Http404("No such invoice.")
        if not self.has_view_or_change_permission(request, invoice):
            raise Http404("No such invoice.")
        return invoice_pdf_response(invoice)

    # -- the changelist with the selection's totals

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        context = getattr(response, "context_data", None)
        if not context or "cl" not in context:
            return response
        cl = context["cl"]
        if cl.result_count > MAX_TOTALS_ROWS:
            context["selection_totals_skipped"] = MAX_TOTALS_ROWS
            return response
        # One GROUP BY over the filtered list, not a loop over its rows. Only issued
        # invoices count: a draft is not owed yet, a cancelled one never will be.
        rows = (
            cl.queryset.filter(state__in=Invoice.ISSUED_STATES)
            .order_by()
            .values("currency")
            .annotate(invoices=Count("id"), subtotal=Sum("cost_without_vat"), total=Sum("cost"))
            .order_by("currency")
        )
        context["selection_totals"] = [
            {
                "currency": row["currency"],
                "invoices": row["invoices"],
                "subtotal": format_amount(row["subtotal"], row["currency"]),
                "total": format_amount(row["total"], row["currency"]),
            }
            for row in rows
        ]
        return response
