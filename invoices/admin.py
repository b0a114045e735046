"""The finance workspace: invoices with their lines, payments and timeline.

Every change made here goes through invoices.services, exactly as the APIs do:
the admin never saves an invoice or a line itself. Actions need the change
permission (the Finance group); the Auditor group sees everything read-only.
Lists are built for a million invoices: no exact counts on big lists, filters
that hit indexes, related rows fetched in bulk.
"""

from __future__ import annotations

import datetime as dt
import re
import tempfile
import zipfile
from collections.abc import Callable

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import Count, Max, Min, QuerySet, Sum
from django.http import FileResponse, Http404, HttpRequest, StreamingHttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from accounts.models import Account
from billing.lib.months import month_start
from billing.lib.paging import EstimatedCountPaginator
from invoices import services
from invoices.exceptions import InvoiceError, InvoiceValidationError
from invoices.export import invoice_csv_lines, parse_month
from invoices.models import Invoice, InvoiceCounter, InvoiceEvent, LineItem, PaymentTransaction
from invoices.pdf import (
    format_amount,
    invoice_pdf_content,
    invoice_pdf_filename,
    invoice_pdf_response,
)

State = Invoice.State

# One request should not issue or render thousands of invoices; the ops
# commands (issue_invoices, charge_invoices, render_pdfs) are for bulk work.
MAX_ACTION_INVOICES = 1000
MAX_ZIP_INVOICES = 300
# Above this many rows the per-currency totals would scan too much on each page view.
MAX_TOTALS_ROWS = 200_000
MAX_FAILURES_LISTED = 10

STATE_COLOURS = {
    State.OPEN: "#6b7280",
    State.FINALIZED: "#2563eb",
    State.PENDING: "#b26a00",
    State.UNPAID: "#c2410c",
    State.PAID: "#2e7d32",
    State.FAILED: "#b3261e",
    State.CANCELLED: "#52525b",
}
_NUMBER_PREFIX_RE = re.compile(r"^\d{4}(-\d{0,8}){0,2}$")


def staff_actor(request: HttpRequest) -> str:
    return f"staff:{request.user.get_username()}"


def state_badge(state: str, label: str) -> str:
    return format_html(
        '<span class="state-badge" style="background:{};color:#fff;padding:1px 7px;'
        'border-radius:8px;font-size:11px;white-space:nowrap">{}</span>',
        STATE_COLOURS.get(state, "#6b7280"),
        label,
    )


# --- list filters ---------------------------------------------------------------


class MonthFilter(admin.SimpleListFilter):
    """The billed month, as period equality (indexed), newest first."""

    title = "month"
    parameter_name = "month"
    max_months = 24

    def lookups(self, request, model_admin):
        # MIN/MAX come from the period index: no scan, whatever the table size.
        bounds = Invoice.objects.aggregate(first=Min("period"), last=Max("period"))
        if bounds["last"] is None:
            return []
        months, current = [], bounds["last"]
        while current >= bounds["first"] and len(months) < self.max_months:
            months.append((current.strftime("%Y-%m"), current.strftime("%B %Y")))
            current = (current - dt.timedelta(days=1)).replace(day=1)
        selected = self.value()
        if selected and selected not in dict(months):
            months.append((selected, selected))
        return months

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        try:
            period = parse_month(value)
        except ValueError:
            raise admin.options.IncorrectLookupParameters(
                f"month must be YYYY-MM, got {value!r}"
            ) from None
        return queryset.filter(period=period)


class CurrencyFilter(admin.SimpleListFilter):
    """Only the currencies accounts actually bill in (the account table is small)."""

    title = "currency"
    parameter_name = "currency"

    def lookups(self, request, model_admin):
        codes = Account.objects.order_by("currency").values_list("currency", flat=True).distinct()
        return [(code, code) for code in codes]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(currency=self.value())
        return queryset


class OverdueFilter(admin.SimpleListFilter):
    """Issued, not paid or cancelled, and past the due date (the state/due_on index)."""

    title = "overdue"
    parameter_name = "overdue"

    def lookups(self, request, model_admin):
        return [("yes", "Overdue"), ("no", "Not overdue")]

    def queryset(self, request, queryset):
        today = timezone.now().date()
        if self.value() == "yes":
            return queryset.overdue(today)
        if self.value() == "no":
            return queryset.not_overdue(today)
        return queryset


class AccountFilter(admin.SimpleListFilter):
    """One account's invoices; reached from the account page or the account column."""

    title = "account"
    parameter_name = "account"

    def lookups(self, request, model_admin):
        value = self.value()
        if not value or not value.isdigit():
            return []
        account = Account.objects.filter(pk=int(value)).only("org_name").first()
        return [(value, account.org_name if account else f"#{value}")]

    def has_output(self) -> bool:
        return bool(self.value())

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        if not value.isdigit():
            raise admin.options.IncorrectLookupParameters("account must be an account id")
        return queryset.filter(account_id=int(value))


# --- forms ------------------------------------------------------------------------


class InvoiceForm(forms.ModelForm):
    class Meta:
        model = Invoice
        fields = ("account", "period", "friendly_id")
        help_texts = {
            "period": "Any day of the billed month; the invoice keeps the first day.",
            "friendly_id": "Leave empty: the number is assigned when the invoice is "
            "finalized or issued. A number set by hand (YYYY-MM-NNNNNNNN) is kept.",
        }

    def clean_period(self):
        period = self.cleaned_data.get("period")
        if period is None:
            return period
        try:
            return services.validate_period(period)
        except InvoiceValidationError as exc:
            raise forms.ValidationError(exc.message) from None

    def clean_friendly_id(self):
        value = self.cleaned_data.get("friendly_id") or None
        if value is None:
            if self.instance.pk and self.instance.friendly_id:
                raise forms.ValidationError("An invoice number cannot be removed.")
            return None
        return value

    def clean(self):
        cleaned = super().clean()
        if not self.instance.pk or self.errors:
            return cleaned
        changed = {
            name: cleaned.get(name)
            for name in ("period", "friendly_id")
            if name in self.changed_data and cleaned.get(name)
        }
        if changed:
            try:
                services.invoice_update_validate(invoice=self.instance, **changed)
            except InvoiceValidationError as exc:
                self.add_error(exc.field if exc.field in self.fields else None, exc.message)
        return cleaned

    def clean_account(self):
        account = self.cleaned_data.get("account")
        if account is not None and not self.instance.pk and account.is_deleted:
            raise forms.ValidationError("This account has been deleted; it cannot be billed.")
        return account


class LineItemForm(forms.ModelForm):
    """New lines are validated by the service's own rules; saved lines are read-only."""

    class Meta:
        model = LineItem
        fields = ("name", "description", "quantity", "unit_price", "type")
        widgets = {"description": forms.TextInput(attrs={"size": 30})}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            # A saved line changes by removal and a new line, never in place:
            # it may carry usage records and a source the billing run relies on.
            for field in self.fields.values():
                field.disabled = True

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk or not self.has_changed():
            return cleaned
        quantity, unit_price = cleaned.get("quantity"), cleaned.get("unit_price")
        if quantity is None or unit_price is None or not cleaned.get("name"):
            return cleaned  # the field errors already say what is missing
        try:
            services.line_item_validate(
                name=cleaned["name"], quantity=quantity, unit_price=unit_price
            )
        except InvoiceValidationError as exc:
            field = exc.field if exc.field in self.fields else None
            self.add_error(field, exc.message)
        return cleaned


class MarkPaidForm(forms.Form):
    reference = forms.CharField(
        max_length=255,
        help_text="The bank transfer's reference, as on the statement.",
    )
    method = forms.ChoiceField(
        choices=PaymentTransaction.Method.choices,
        initial=PaymentTransaction.Method.BANK_TRANSFER,
    )


class CancelForm(forms.Form):
    reason = forms.CharField(
        max_length=1000, help_text="Why: kept in the invoice's timeline.", widget=forms.Textarea
    )


# --- inlines ----------------------------------------------------------------------


class LineItemInline(admin.TabularInline):
    model = LineItem
    form = LineItemForm
    fields = ("name", "description", "quantity", "unit_price", "type", "line_cost")
    readonly_fields = ("line_cost",)
    extra = 0

    @admin.display(description="cost")
    def line_cost(self, line: LineItem) -> str:
        if line.pk is None:
            return "—"
        return format_amount(line.cost, line.invoice.currency)

    def _editable(self, obj: Invoice | None) -> bool:
        return obj is None or obj.is_editable

    def has_add_permission(self, request, obj=None) -> bool:
        return self._editable(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return self._editable(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        # Removing a line is a change of the invoice, not a delete permission.
        return self._editable(obj) and self.has_change_permission(request, obj)

    def get_extra(self, request, obj=None, **kwargs) -> int:
        return 1 if self._editable(obj) and obj is not None else 0


class _ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class PaymentTransactionInline(_ReadOnlyInline):
    model = PaymentTransaction
    fields = (
        "created_at",
        "action",
        "paid_amount",
        "currency",
        "success",
        "method",
        "reference",
        "message",
        "card",
    )
    readonly_fields = fields

    @admin.display(description="amount")
    def paid_amount(self, payment: PaymentTransaction) -> str:
        return format_amount(payment.amount, payment.currency)

    @admin.display(description="card")
    def card(self, payment: PaymentTransaction) -> str:
        if not payment.card_last4:
            return "—"
        return f"{payment.card_brand} •••• {payment.card_last4}"


class InvoiceEventInline(_ReadOnlyInline):
    model = InvoiceEvent
    verbose_name = "event"
    verbose_name_plural = "timeline"
    fields = ("created_at", "kind", "from_state", "to_state", "actor", "reason", "data")
    readonly_fields = fields


# --- the invoice admin ----------------------------------------------------------


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
        "currency",
    )
    list_display_links = ("number",)
    list_filter = ("state", MonthFilter, CurrencyFilter, OverdueFilter, AccountFilter)
    search_fields = ("friendly_id", "account__org_name", "account__billing_email")
    search_help_text = "An invoice number (or its start), an organisation or an e-mail address."
    list_select_related = ("account",)
    list_per_page = 50
    show_full_result_count = False
    # Facet counts are one COUNT per filter choice: far too many on a big table.
    show_facets = admin.ShowFacets.NEVER
    paginator = EstimatedCountPaginator
    autocomplete_fields = ("account",)
    inlines = (LineItemInline, PaymentTransactionInline, InvoiceEventInline)
    actions = (
        "finalize_invoices",
        "issue_invoices",
        "charge_invoices",
        "mark_paid",
        "cancel_invoices",
        "download_pdfs",
        "export_csv",
    )
    change_list_template = "admin/invoices/invoice/change_list.html"
    change_form_template = "admin/invoices/invoice/change_form.html"

    detail_fields = (
        "state_label",
        "creation_type",
        "currency",
        "vat_rate",
        "vat_code",
        "subtotal",
        "vat",
        "total",
        "issued_on",
        "due_on",
        "paid_at",
        "finalized_at",
        "cancelled_at",
        "charge_attempts",
        "last_charge_attempt_at",
        "pdf_link",
        "buyer_details",
        "seller_details",
        "created_at",
        "updated_at",
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
        return format_amount(invoice.cost, invoice.currency)

    @admin.display(description="subtotal")
    def subtotal(self, invoice: Invoice) -> str:
        return format_amount(invoice.cost_without_vat, invoice.currency)

    @admin.display(description="VAT")
    def vat(self, invoice: Invoice) -> str:
        return format_amount(invoice.vat_amount, invoice.currency)

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
        if term.isdigit():
            return queryset.filter(pk=int(term)), False
        accounts = Account.objects.filter(org_name__icontains=term) | Account.objects.filter(
            billing_email__icontains=term
        )
        return queryset.filter(account__in=accounts.values("pk")), False

    # -- the change form

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("account", "period")
        return ("account", "period", "friendly_id", *self.detail_fields)

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        if obj.is_editable:
            return ("account", *self.detail_fields)
        # Issued or cancelled: every field, for the books.
        return ("account", "period", "friendly_id", *self.detail_fields)

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        initial.setdefault("period", month_start(timezone.now().date()))
        return initial

    def has_delete_permission(self, request, obj=None) -> bool:
        # Only a draft can be deleted (invoice_delete); anything else is cancelled.
        if obj is not None and obj.state != State.OPEN:
            return False
        return super().has_delete_permission(request, obj)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        invoice = self.get_object(request, object_id)
        if invoice is not None and not invoice.is_editable:
            # Issued or cancelled: nothing on the page can be saved, so offer no Save.
            extra_context = {
                **(extra_context or {}),
                "show_save": False,
                "show_save_and_continue": False,
                "show_save_and_add_another": False,
            }
        return super().change_view(request, object_id, form_url, extra_context)

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
            )
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
        # One GROUP BY over the filtered list, not a loop over its rows.
        rows = (
            cl.queryset.order_by()
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

    # -- actions

    def _selected(self, request, queryset) -> list[Invoice] | None:
        count = queryset.count()
        if count > MAX_ACTION_INVOICES:
            self.message_user(
                request,
                f"Select at most {MAX_ACTION_INVOICES:,} invoices for this action "
                f"({count:,} selected); the ops commands handle bulk work.",
                messages.ERROR,
            )
            return None
        return list(queryset.select_related("account").order_by("id"))

    def _run_each(
        self,
        request,
        invoices: list[Invoice],
        verb: str,
        operation: Callable[[Invoice], object],
    ) -> None:
        """Run one service call per invoice, each in its own transaction, and report
        every failure by number: "Issued 3; 1 failed: 2026-11-00000004: …"."""
        done, failures = 0, []
        for invoice in invoices:
            try:
                operation(invoice)
            except InvoiceError as exc:
                failures.append(f"{invoice}: {exc.message}")
            else:
                done += 1
        if not failures:
            self.message_user(request, f"{verb} {done}.", messages.SUCCESS)
            return
        listed = "; ".join(failures[:MAX_FAILURES_LISTED])
        if len(failures) > MAX_FAILURES_LISTED:
            listed += f"; and {len(failures) - MAX_FAILURES_LISTED} more"
        level = messages.WARNING if done else messages.ERROR
        self.message_user(request, f"{verb} {done}; {len(failures)} failed: {listed}", level)

    @admin.action(description="Finalize selected invoices", permissions=["change"])
    def finalize_invoices(self, request, queryset):
        invoices = self._selected(request, queryset)
        if invoices is not None:
            actor = staff_actor(request)
            self._run_each(
                request,
                invoices,
                "Finalized",
                lambda inv: services.invoice_finalize(invoice=inv, actor=actor),
            )

    @admin.action(description="Issue selected invoices", permissions=["change"])
    def issue_invoices(self, request, queryset):
        invoices = self._selected(request, queryset)
        if invoices is not None:
            actor = staff_actor(request)
            self._run_each(
                request,
                invoices,
                "Issued",
                lambda inv: services.invoice_issue(invoice=inv, actor=actor),
            )

    @admin.action(description="Charge selected invoices (card on file)", permissions=["change"])
    def charge_invoices(self, request, queryset):
        invoices = self._selected(request, queryset)
        if invoices is not None:
            actor = staff_actor(request)
            self._run_each(
                request,
                invoices,
                "Charged",
                lambda inv: services.invoice_charge(invoice=inv, actor=actor),
            )

    def _intermediate(self, request, queryset, form, *, title: str, action: str, button: str):
        invoices = queryset.select_related("account").order_by("id")[:MAX_ACTION_INVOICES]
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.model._meta,
            "form": form,
            "invoices": invoices,
            "action": action,
            "button": button,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/invoices/invoice/action_form.html", context)

    @admin.action(description="Record a bank payment (mark paid)", permissions=["change"])
    def mark_paid(self, request, queryset):
        if "apply" in request.POST:
            form = MarkPaidForm(request.POST)
            if form.is_valid():
                invoices = self._selected(request, queryset)
                if invoices is not None:
                    actor = staff_actor(request)
                    reference, method = form.cleaned_data["reference"], form.cleaned_data["method"]
                    self._run_each(
                        request,
                        invoices,
                        "Marked paid",
                        lambda inv: services.invoice_mark_paid(
                            invoice=inv, actor=actor, reference=reference, method=method
                        ),
                    )
                return None
        else:
            form = MarkPaidForm()
        return self._intermediate(
            request,
            queryset,
            form,
            title="Record a payment",
            action="mark_paid",
            button="Mark paid",
        )

    @admin.action(description="Cancel selected invoices", permissions=["change"])
    def cancel_invoices(self, request, queryset):
        if "apply" in request.POST:
            form = CancelForm(request.POST)
            if form.is_valid():
                invoices = self._selected(request, queryset)
                if invoices is not None:
                    actor = staff_actor(request)
                    reason = form.cleaned_data["reason"]
                    self._run_each(
                        request,
                        invoices,
                        "Cancelled",
                        lambda inv: services.invoice_cancel(
                            invoice=inv, actor=actor, reason=reason
                        ),
                    )
                return None
        else:
            form = CancelForm()
        return self._intermediate(
            request,
            queryset,
            form,
            title="Cancel invoices",
            action="cancel_invoices",
            button="Cancel these invoices",
        )

    @admin.action(description="Download PDFs (ZIP)", permissions=["change"])
    def download_pdfs(self, request, queryset):
        count = queryset.count()
        if count > MAX_ZIP_INVOICES:
            self.message_user(
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
    def export_csv(self, request, queryset: QuerySet[Invoice]):
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response = StreamingHttpResponse(invoice_csv_lines(queryset), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="invoices-{stamp}.csv"'
        return response


# --- the supporting tables ----------------------------------------------------------


class _ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written only by the services: browsable and searchable, never edited by hand."""

    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = EstimatedCountPaginator

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(LineItem)
class LineItemAdmin(_ReadOnlyAdmin):
    list_display = ("name", "invoice", "quantity", "unit_price", "cost", "type", "source")
    list_filter = ("type",)
    list_select_related = ("invoice",)
    raw_id_fields = ("invoice",)


@admin.register(PaymentTransaction)
class PaymentTransactionAdmin(_ReadOnlyAdmin):
    list_display = (
        "created_at",
        "invoice",
        "account",
        "action",
        "amount",
        "currency",
        "success",
        "method",
        "reference",
    )
    list_filter = ("success", "action", "method")
    list_select_related = ("invoice", "account")
    search_fields = ("reference",)
    exclude = ("gateway_response",)
    raw_id_fields = ("invoice", "account")


@admin.register(InvoiceEvent)
class InvoiceEventAdmin(_ReadOnlyAdmin):
    list_display = ("created_at", "invoice", "kind", "from_state", "to_state", "actor", "reason")
    list_filter = ("kind",)
    list_select_related = ("invoice",)
    raw_id_fields = ("invoice",)


@admin.register(InvoiceCounter)
class InvoiceCounterAdmin(_ReadOnlyAdmin):
    list_display = ("series", "last_number", "updated_at")
