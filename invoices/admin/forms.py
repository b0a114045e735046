"""The invoice admin's forms. Each one validates with the services' own rules,
and the action forms' fields are named after the service's parameters they fill."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django import forms

from billing.lib.money import as_written
from invoices import services
from invoices.exceptions import InvoiceValidationError
from invoices.models import Invoice, LineItem, PaymentTransaction


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
        super().clean()
        cleaned = self.cleaned_data
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
            # Shown as written, not padded to the column's places (801, not 801.0000).
            for name in ("quantity", "unit_price"):
                value = self.initial.get(name)
                if value is not None:
                    places = 2 if name == "unit_price" else 0
                    self.initial[name] = as_written(value, min_places=places)

    def clean(self):
        super().clean()
        cleaned = self.cleaned_data
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
    """The keywords of `invoice_mark_paid`."""

    amount = forms.DecimalField(
        required=False,
        min_value=Decimal("0.01"),
        max_digits=18,
        decimal_places=4,
        help_text="The amount received; leave empty for what is due on each invoice. A part "
        "leaves the rest due; too much goes to the customer's credit balance.",
    )
    paid_on = forms.DateField(
        label="Date received",
        required=False,
        initial=dt.date.today,
        help_text="YYYY-MM-DD; empty for today.",
    )

    reference = forms.CharField(
        max_length=255,
        help_text="The bank transfer's reference, as on the statement.",
    )
    method = forms.ChoiceField(
        choices=PaymentTransaction.Method.choices,
        initial=PaymentTransaction.Method.BANK_TRANSFER,
    )


class CancelForm(forms.Form):
    """The keywords of `invoice_cancel`."""

    reason = forms.CharField(
        max_length=1000, help_text="Why: kept in the invoice's timeline.", widget=forms.Textarea
    )


class CreditNoteForm(forms.Form):
    """The keywords of `credit_note_create` (by amount)."""

    reason = forms.CharField(max_length=1000, widget=forms.Textarea)
    amount = forms.DecimalField(
        min_value=Decimal("0.01"),
        max_digits=18,
        decimal_places=4,
        help_text="Net amount to credit; VAT at the invoice's rate is added.",
    )
    refund = forms.BooleanField(
        required=False,
        help_text="Refund what comes out of a card payment through the gateway (else it "
        "goes to the customer's credit balance).",
    )
