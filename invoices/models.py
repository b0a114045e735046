"""Invoices, their lines, payment transactions, the event log and the number counters."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db import models
from django.db.models import F, Q, Value
from django.utils import timezone

from accounts.models import CURRENCY_CHOICES, Account, Seller
from billing.lib.money import (
    AMOUNT_DECIMAL_PLACES,
    AMOUNT_MAX_DIGITS,
    QUANTITY_DECIMAL_PLACES,
    UNIT_PRICE_DECIMAL_PLACES,
    ZERO,
)
from billing.lib.months import month_end
from invoices import tax

_TOTALS_TOLERANCE = Value(Decimal("0.00005"))


def amount_field(**kwargs) -> models.DecimalField:
    return models.DecimalField(
        max_digits=AMOUNT_MAX_DIGITS, decimal_places=AMOUNT_DECIMAL_PLACES, **kwargs
    )


def buyer_details(account: Account) -> dict:
    """The buyer block of an invoice, from the live account (frozen at issue)."""
    return {
        "id": account.pk,
        "org_name": account.org_name,
        "email": account.billing_email,
        "address_line1": account.address_line1,
        "address_line2": account.address_line2,
        "city": account.city,
        "state": account.address_state,
        "zip": account.zip,
        "country": account.country,
        "phone": account.phone,
        "vat_code": account.vat_code,
    }


def seller_details(seller: Seller, *, currency: str | None = None) -> dict:
    """The seller block of an invoice, from the live seller profile (frozen at issue):
    with `currency`, the bank account of that currency (else the default one)."""
    bank = (
        seller.bank_details(currency)
        if currency
        else {
            "bank_name": seller.bank_name,
            "bank_account_holder": seller.bank_account_holder,
            "iban": seller.iban,
            "bic": seller.bic,
        }
    )
    return {
        "id": seller.pk,
        "name": seller.name,
        "address_line1": seller.address_line1,
        "address_line2": seller.address_line2,
        "city": seller.city,
        "state": seller.address_state,
        "zip": seller.zip,
        "country": seller.country,
        "phone": seller.phone,
        "email": seller.email,
        "vat_id": seller.vat_id,
        "registration_id": seller.registration_id,
        "registered_office": seller.registered_office,
        "legal_form": seller.legal_form,
        "share_capital": seller.share_capital,
        **bank,
    }


def line_vat_category_field() -> models.CharField:
    return models.CharField(
        "VAT category", max_length=2, choices=tax.Category.choices, null=True, blank=True
    )


def line_vat_rate_field() -> models.DecimalField:
    return models.DecimalField(
        "VAT rate",
        max_digits=5,
        decimal_places=tax.VAT_RATE_DECIMAL_PLACES,
        null=True,
        blank=True,
    )


class InvoiceQuerySet(models.QuerySet):
    def outstanding(self) -> InvoiceQuerySet:
        """Issued and still owed: pending, unpaid or failed."""
        return self.filter(state__in=Invoice.OUTSTANDING_STATES)

    def overdue(self, today: dt.date) -> InvoiceQuerySet:
        return self.outstanding().filter(due_on__lt=today)

    def not_overdue(self, today: dt.date) -> InvoiceQuerySet:
        return self.exclude(state__in=Invoice.OUTSTANDING_STATES, due_on__lt=today)

    def issued(self) -> InvoiceQuerySet:
        return self.filter(state__in=Invoice.ISSUED_STATES)


class Invoice(models.Model):
    """A bill to one account for one period (a month)."""

    class State(models.TextChoices):
        # Values are 3scale's, on every API; labels are what a clerk reads in the
        # admin and on the PDF, and never leave through an API.
        OPEN = "open", "Draft"
        FINALIZED = "finalized", "Finalized"
        PENDING = "pending", "Awaiting payment"
        UNPAID = "unpaid", "Payment failed"
        PAID = "paid", "Paid"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    class CreationType(models.TextChoices):
        MANUAL = "manual", "Manual"
        BACKGROUND = "background", "Background"

    # 3scale's invoice state machine: target state -> allowed sources.
    TRANSITIONS: dict[str, frozenset[str]] = {
        State.FINALIZED: frozenset({State.OPEN}),
        State.PENDING: frozenset({State.OPEN, State.FINALIZED}),
        State.UNPAID: frozenset({State.PENDING}),
        State.PAID: frozenset({State.PENDING, State.UNPAID, State.FAILED}),
        State.FAILED: frozenset({State.UNPAID}),
        State.CANCELLED: frozenset(
            {State.OPEN, State.FINALIZED, State.PENDING, State.UNPAID, State.FAILED}
        ),
    }
    # Lines (and so totals) may change: open or finalized (3scale's `editable?`).
    EDITABLE_STATES = frozenset({State.OPEN, State.FINALIZED})
    ISSUED_STATES = frozenset({State.PENDING, State.UNPAID, State.PAID, State.FAILED})
    # Issued and still owed: what a charge, the dashboard and "overdue" look at.
    OUTSTANDING_STATES = frozenset({State.PENDING, State.UNPAID, State.FAILED})
    CHARGEABLE_STATES = OUTSTANDING_STATES

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="invoices")
    period = models.DateField(help_text="First day of the billed month.")
    state = models.CharField(max_length=16, choices=State.choices, default=State.OPEN)
    friendly_id = models.CharField("number", max_length=20, null=True, blank=True)
    creation_type = models.CharField(
        max_length=16, choices=CreationType.choices, default=CreationType.MANUAL
    )
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES, default="USD")
    vat_rate = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    vat_code = models.CharField(max_length=64, blank=True)
    cost_without_vat = amount_field(default=Decimal("0"))
    vat_amount = amount_field(default=Decimal("0"))
    cost = amount_field(default=Decimal("0"))
    # What has been settled, always within the total (amount_due() never negative):
    # money received and kept on the invoice (payments less refunds and less what
    # went on to the account's credit balance), credit notes, and credit balance
    # consumed at issue.
    amount_paid = amount_field(default=Decimal("0"))
    amount_credited = amount_field(default=Decimal("0"))
    credit_applied = amount_field(default=Decimal("0"))
    issued_on = models.DateField(null=True, blank=True)
    due_on = models.DateField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    finalized_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    # Frozen at issue: the parties exactly as they were when the invoice was issued.
    buyer_details = models.JSONField(default=dict, blank=True)
    seller_details = models.JSONField(default=dict, blank=True)
    # Frozen at issue: the VAT treatment (invoices.tax), with its EN 16931
    # category, the legal mention printed and the exemption reason (BT-120);
    # vat_rate holds its rate.
    tax_treatment = models.CharField(max_length=20, choices=tax.Kind.choices, blank=True)
    tax_category = models.CharField(
        "VAT category", max_length=2, choices=tax.Category.choices, blank=True
    )
    tax_mention = models.CharField(max_length=255, blank=True)
    tax_exemption_reason = models.CharField(max_length=255, blank=True)
    seller_country_code = models.CharField(max_length=2, blank=True)
    buyer_country_code = models.CharField(max_length=2, blank=True)
    charge_attempts = models.PositiveSmallIntegerField(default=0)
    last_charge_attempt_at = models.DateTimeField(null=True, blank=True)
    pdf = models.FileField(upload_to="invoices/%Y/%m/", blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = InvoiceQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["friendly_id"],
                condition=Q(friendly_id__isnull=False),
                name="invoice_friendly_id_unique",
            ),
            # One background (billing-run) invoice per account and month.
            models.UniqueConstraint(
                fields=["account", "period"],
                condition=Q(creation_type="background") & ~Q(state="cancelled"),
                name="invoice_one_background_per_account_period",
            ),
            models.CheckConstraint(
                name="invoice_state_valid",
                condition=Q(
                    state__in=[
                        "open",
                        "finalized",
                        "pending",
                        "unpaid",
                        "paid",
                        "failed",
                        "cancelled",
                    ]
                ),
            ),
            models.CheckConstraint(name="invoice_period_first_day", condition=Q(period__day=1)),
            # cost = cost_without_vat + vat_amount. Exact on PostgreSQL; the
            # half-of-the-last-stored-digit tolerance only absorbs SQLite's
            # floating-point arithmetic on decimal columns.
            models.CheckConstraint(
                name="invoice_totals_identity",
                condition=Q(cost__gte=F("cost_without_vat") + F("vat_amount") - _TOTALS_TOLERANCE)
                & Q(cost__lte=F("cost_without_vat") + F("vat_amount") + _TOTALS_TOLERANCE),
            ),
            models.CheckConstraint(
                name="invoice_settled_within_total",
                condition=Q(amount_paid__gte=0)
                & Q(amount_credited__gte=0)
                & Q(credit_applied__gte=0)
                & Q(
                    cost__gte=F("amount_paid")
                    + F("amount_credited")
                    + F("credit_applied")
                    - _TOTALS_TOLERANCE
                ),
            ),
            models.CheckConstraint(
                name="invoice_numbered_after_open",
                condition=Q(state__in=["open", "cancelled"]) | Q(friendly_id__isnull=False),
            ),
            models.CheckConstraint(
                name="invoice_issued_has_dates",
                condition=~Q(state__in=["pending", "unpaid", "paid", "failed"])
                | Q(issued_on__isnull=False, due_on__isnull=False),
            ),
            models.CheckConstraint(
                name="invoice_paid_has_paid_at",
                condition=~Q(state="paid") | Q(paid_at__isnull=False),
            ),
            models.CheckConstraint(
                name="invoice_due_after_issue",
                condition=Q(issued_on__isnull=True) | Q(due_on__gte=F("issued_on")),
            ),
        ]
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="invoice_newest_idx"),
            models.Index(fields=["state", "-created_at", "-id"], name="invoice_state_newest_idx"),
            models.Index(fields=["period", "-created_at", "-id"], name="invoice_period_newest_idx"),
            # The 3scale list's most common filter, state + month: serves both
            # its COUNT and its newest-first page from one index.
            models.Index(
                fields=["period", "state", "-created_at", "-id"],
                name="invoice_month_state_idx",
            ),
            models.Index(
                fields=["account", "-created_at", "-id"], name="invoice_account_newest_idx"
            ),
            models.Index(fields=["state", "due_on"], name="invoice_state_due_idx"),
        ]

    def __str__(self) -> str:
        return self.friendly_id or f"Draft #{self.pk}"

    @property
    def period_end(self) -> dt.date:
        return month_end(self.period)

    @property
    def is_editable(self) -> bool:
        """Its lines may change (open or finalized); totals follow the lines."""
        return self.state in self.EDITABLE_STATES

    @property
    def is_draft(self) -> bool:
        """Open and unnumbered: its month and lines may be replaced as a whole (/v1 edits)."""
        return self.state == self.State.OPEN

    @property
    def is_issued(self) -> bool:
        return self.issued_on is not None

    @property
    def serves_stored_pdf(self) -> bool:
        """An issued invoice's document is the file rendered at issue; a draft or a
        cancelled invoice (whose stored copy carries no CANCELLED mark) renders live."""
        return self.is_issued and self.state != self.State.CANCELLED

    def buyer(self) -> dict:
        """The buyer as printed: frozen at issue once issued, the live account before."""
        if self.is_issued and self.buyer_details:
            return self.buyer_details
        return buyer_details(self.account)

    def seller(self, live: Seller | None = None) -> dict:
        """The seller as printed: frozen at issue once issued, the live profile before
        (`live`, when the caller already loaded it for a whole page)."""
        if self.is_issued and self.seller_details:
            return self.seller_details
        return seller_details(live or Seller.load())

    def amount_due(self) -> Decimal:
        """What the buyer still owes: total - paid - credited - credit applied (0 for a
        draft or a cancelled invoice, which nobody owes)."""
        if not self.is_issued or self.state == self.State.CANCELLED:
            return Decimal("0")
        return self.cost - self.amount_paid - self.amount_credited - self.credit_applied

    def successful_purchase(self) -> PaymentTransaction | None:
        """The payment that settled it, if any (at most one, by constraint). Uses the
        `successful_purchases` prefetch of the list selectors when present."""
        prefetched = getattr(self, "successful_purchases", None)
        if prefetched is not None:
            return prefetched[0] if prefetched else None
        return PaymentTransaction.objects.filter(invoice=self).successful_purchases().first()

    def can_transition_to(self, to_state: str) -> bool:
        return self.state in self.TRANSITIONS.get(to_state, frozenset())

    @property
    def vat_category(self) -> str:
        """The frozen category, or the one a draft's rate implies."""
        return self.tax_category or tax.category_of(self.vat_rate)

    def line_tax(self, category: str | None, rate: Decimal | None) -> tuple[str, Decimal]:
        """A line's (category, rate): its own, or the invoice's when it has none (a
        draft's line, or one of an invoice issued before lines carried theirs)."""
        if category:
            return category, rate or ZERO
        return self.vat_category, self.vat_rate or ZERO

    def vat_breakdown(self) -> list[tax.VatBreakdown]:
        """VAT per category and rate, each line at its own; cost = cost_without_vat +
        the sum of its `vat`."""
        rows = tax.vat_breakdown(
            (
                (*self.line_tax(line.vat_category, line.vat_rate), line.cost)
                for line in self.line_items.all()
            ),
            self.currency,
        )
        return rows or [tax.VatBreakdown(self.vat_category, self.vat_rate or ZERO, ZERO, ZERO)]


class LineItem(models.Model):
    """One charged line of an invoice: cost = round(quantity x unit_price)."""

    class Type(models.TextChoices):
        MANUAL = "manual", "Manual"
        PLAN_FEE = "plan_fee", "Plan fee"
        USAGE = "usage", "Usage"

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="line_items")
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    quantity = models.DecimalField(
        max_digits=18, decimal_places=QUANTITY_DECIMAL_PLACES, default=Decimal("1")
    )
    unit_price = models.DecimalField(max_digits=28, decimal_places=UNIT_PRICE_DECIMAL_PLACES)
    cost = amount_field()
    type = models.CharField(max_length=16, choices=Type.choices, default=Type.MANUAL)
    # 3scale references, kept for API compatibility (no such objects exist here).
    metric_id = models.BigIntegerField(null=True, blank=True)
    plan_id = models.BigIntegerField(null=True, blank=True)
    contract_id = models.BigIntegerField(null=True, blank=True)
    contract_type = models.CharField(max_length=64, blank=True)
    # Where the line came from, e.g. "usage:EC2:us-west-1" for a billing-run line.
    source = models.CharField(max_length=255, blank=True)
    # The line's own EN 16931 VAT category and rate; null: the invoice's treatment.
    # Issuing writes the invoice's on every line that has none (frozen).
    vat_category = line_vat_category_field()
    vat_rate = line_vat_rate_field()
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                name="lineitem_type_valid", condition=Q(type__in=["manual", "plan_fee", "usage"])
            ),
            models.CheckConstraint(
                name="lineitem_vat_rate_range",
                condition=Q(vat_rate__isnull=True) | Q(vat_rate__gte=0, vat_rate__lte=100),
            ),
            models.CheckConstraint(
                name="lineitem_vat_category_valid",
                condition=Q(vat_category__isnull=True) | Q(vat_category__in=tax.Category.values),
            ),
            models.UniqueConstraint(
                fields=["invoice", "source"],
                condition=~Q(source=""),
                name="lineitem_one_per_source",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class PaymentTransactionQuerySet(models.QuerySet):
    def successful_purchases(self) -> PaymentTransactionQuerySet:
        """The payments that settled an invoice (at most one per invoice, by constraint)."""
        return self.filter(action=PaymentTransaction.Action.PURCHASE, success=True)


class PaymentTransaction(models.Model):
    """One charge or refund attempt, successful or not."""

    class Action(models.TextChoices):
        PURCHASE = "purchase", "Purchase"
        REFUND = "refund", "Refund"
        # A payment received outside the gateway and recorded by hand (partial
        # payments: several per invoice, unlike a card purchase).
        PAYMENT = "payment", "Payment"

    class Method(models.TextChoices):
        CREDIT_CARD = "credit_card", "Credit card"
        BANK_TRANSFER = "bank_transfer", "Bank transfer"
        CHEQUE = "cheque", "Cheque"
        OTHER = "other", "Other"

    invoice = models.ForeignKey(
        Invoice, on_delete=models.PROTECT, related_name="payment_transactions"
    )
    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="payment_transactions"
    )
    amount = amount_field()
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    action = models.CharField(max_length=16, choices=Action.choices, default=Action.PURCHASE)
    success = models.BooleanField(default=False)
    reference = models.CharField(max_length=255, blank=True)
    message = models.CharField(max_length=1024, blank=True)
    method = models.CharField(max_length=32, choices=Method.choices, default=Method.CREDIT_CARD)
    # The day the money was received, as the payer says (recorded payments).
    paid_on = models.DateField(null=True, blank=True)
    # What of `amount` settled the invoice (a recorded payment's excess goes to the
    # account's credit balance); null for card purchases and refunds.
    applied_amount = amount_field(null=True, blank=True)
    card_brand = models.CharField(max_length=32, blank=True)
    card_last4 = models.CharField(max_length=4, blank=True)
    card_exp_month = models.PositiveSmallIntegerField(null=True, blank=True)
    card_exp_year = models.PositiveSmallIntegerField(null=True, blank=True)
    test = models.BooleanField(default=False)
    gateway_response = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = PaymentTransactionQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            # Whatever races, an invoice is paid at most once.
            models.UniqueConstraint(
                fields=["invoice"],
                condition=Q(action="purchase", success=True),
                name="payment_one_successful_purchase_per_invoice",
            ),
            models.CheckConstraint(name="payment_amount_positive", condition=Q(amount__gt=0)),
        ]

    def __str__(self) -> str:
        outcome = "ok" if self.success else "failed"
        return f"{self.action} {self.amount} {self.currency} ({outcome})"


class InvoiceEvent(models.Model):
    """An append-only record of one change to an invoice: who, when, from, to, why."""

    class Kind(models.TextChoices):
        CREATED = "created", "Created"
        TRANSITION = "transition", "State change"
        UPDATED = "updated", "Updated"
        LINE_ADDED = "line_added", "Line added"
        LINE_REMOVED = "line_removed", "Line removed"
        CHARGE_FAILED = "charge_failed", "Charge failed"
        PAYMENT_RECORDED = "payment_recorded", "Payment recorded"
        CREDIT_NOTE = "credit_note", "Credit note"
        PDF_RENDERED = "pdf_rendered", "PDF rendered"

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    from_state = models.CharField(max_length=16, blank=True)
    to_state = models.CharField(max_length=16, blank=True)
    actor = models.CharField(max_length=255)
    reason = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.from_state}->{self.to_state} by {self.actor}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None and not self._state.adding:
            raise ValueError("Invoice events are append-only.")
        super().save(*args, **kwargs)


class InvoiceCounter(models.Model):
    """The last number handed out in one series ("2026-03" or "2026")."""

    series = models.CharField(max_length=7, unique=True)
    last_number = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["series"]

    def __str__(self) -> str:
        return f"{self.series}: {self.last_number}"


class CreditNote(models.Model):
    """A correction of an issued invoice: credits part or all of it, never more.

    Numbered in its own gap-free series (CN-YYYY-NNNNNNNN); parties, currency
    and VAT rate are the invoice's, frozen. What it does with the money is
    split over three amounts that add up to its total: the part that reduced
    what was still due, the part refunded through the gateway, and the part
    added to the account's credit balance.
    """

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="credit_notes")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="credit_notes")
    number = models.CharField(max_length=20, unique=True)
    issued_on = models.DateField()
    reason = models.TextField()
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    vat_rate = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    cost_without_vat = amount_field()
    vat_amount = amount_field()
    cost = amount_field()
    # The invoice's tax treatment, frozen with it at issue, copied as it is.
    tax_treatment = models.CharField(max_length=20, choices=tax.Kind.choices, blank=True)
    tax_category = models.CharField(
        "VAT category", max_length=2, choices=tax.Category.choices, blank=True
    )
    tax_mention = models.CharField(max_length=255, blank=True)
    tax_exemption_reason = models.CharField(max_length=255, blank=True)
    amount_due_reduced = amount_field(default=Decimal("0"))
    amount_refunded = amount_field(default=Decimal("0"))
    amount_to_balance = amount_field(default=Decimal("0"))
    buyer_details = models.JSONField(default=dict, blank=True)
    seller_details = models.JSONField(default=dict, blank=True)
    # Its VAT breakdown, one row per category and rate, as credited:
    # [{"category", "rate", "taxable", "vat"}] with decimal strings. Empty on notes
    # made before: their one row is (tax_category, vat_rate, net, VAT).
    vat_breakdown_rows = models.JSONField(default=list, blank=True)
    pdf = models.FileField(upload_to="credit_notes/%Y/%m/", blank=True)
    actor = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(name="credit_note_positive", condition=Q(cost__gt=0)),
            models.CheckConstraint(
                name="credit_note_totals_identity",
                condition=Q(cost__gte=F("cost_without_vat") + F("vat_amount") - _TOTALS_TOLERANCE)
                & Q(cost__lte=F("cost_without_vat") + F("vat_amount") + _TOTALS_TOLERANCE),
            ),
            models.CheckConstraint(
                name="credit_note_settlement_identity",
                condition=Q(
                    cost__gte=F("amount_due_reduced")
                    + F("amount_refunded")
                    + F("amount_to_balance")
                    - _TOTALS_TOLERANCE
                )
                & Q(
                    cost__lte=F("amount_due_reduced")
                    + F("amount_refunded")
                    + F("amount_to_balance")
                    + _TOTALS_TOLERANCE
                ),
            ),
        ]
        indexes = [
            models.Index(fields=["account", "-created_at", "-id"], name="credit_note_account_idx"),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def vat_category(self) -> str:
        return self.tax_category or tax.category_of(self.vat_rate)

    def vat_breakdown(self) -> list[tax.VatBreakdown]:
        """VAT per category and rate as credited; cost = cost_without_vat + the sum of its
        `vat` (the note crediting the rest of a group takes exactly its VAT left)."""
        if not self.vat_breakdown_rows:
            return [
                tax.VatBreakdown(
                    self.vat_category, self.vat_rate or ZERO, self.cost_without_vat, self.vat_amount
                )
            ]
        return [
            tax.VatBreakdown(
                row["category"], Decimal(row["rate"]), Decimal(row["taxable"]), Decimal(row["vat"])
            )
            for row in self.vat_breakdown_rows
        ]

    def line_tax(self, line: CreditNoteLine) -> tuple[str, Decimal]:
        if line.vat_category:
            return line.vat_category, line.vat_rate or ZERO
        return self.vat_category, self.vat_rate or ZERO


class CreditNoteLine(models.Model):
    """A credited line: `quantity` of one invoice line at its unit price, or (for a
    credit by amount) one line of that amount with no invoice line."""

    credit_note = models.ForeignKey(CreditNote, on_delete=models.CASCADE, related_name="lines")
    line_item = models.ForeignKey(
        LineItem, on_delete=models.PROTECT, null=True, blank=True, related_name="credit_lines"
    )
    name = models.CharField(max_length=255)
    quantity = models.DecimalField(
        max_digits=18, decimal_places=QUANTITY_DECIMAL_PLACES, default=Decimal("1")
    )
    unit_price = models.DecimalField(max_digits=28, decimal_places=UNIT_PRICE_DECIMAL_PLACES)
    cost = amount_field()
    # The credited line's category and rate (its invoice line's, frozen); null on
    # the lines of notes made before lines carried their own.
    vat_category = line_vat_category_field()
    vat_rate = line_vat_rate_field()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name


class InvoiceRepresentation(models.Model):
    """One API representation of an invoice, rendered when the invoice changed and
    served as stored (invoices.representations): the 3scale JSON and XML fragments
    and the /v1 JSON. `format_version` names the renderers' code that wrote `body`;
    a row of another version, or none, is rendered again on read."""

    class Kind(models.TextChoices):
        THREESCALE_JSON = "3scale_json", "3scale JSON"
        THREESCALE_XML = "3scale_xml", "3scale XML"
        V1_JSON = "v1_json", "/v1 JSON"

    # No index of its own: the unique (invoice, kind) index serves every lookup.
    # On PostgreSQL the key also cascades in the database (migration 0012), so a
    # raw DELETE of invoices (the benchmark's clean-up) takes their rows along.
    invoice = models.ForeignKey(
        Invoice, on_delete=models.CASCADE, related_name="representations", db_index=False
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    format_version = models.CharField(max_length=40)
    body = models.TextField()
    rendered_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["invoice", "kind"], name="invoice_representation_one_per_kind"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} of invoice {self.invoice_id}"


# The delivery models (outbox, webhook endpoints, hosted links) belong to this app.
from invoices.delivery.models import (  # noqa: E402, F401
    HostedLink,
    Notification,
    WebhookAttempt,
    WebhookEndpoint,
)
