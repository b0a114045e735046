"""Buyer accounts, the seller profile, API keys and stored idempotent responses."""

from __future__ import annotations

import hashlib
from typing import ClassVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from billing.lib.countries import COUNTRY_CHOICES
from billing.lib.money import CURRENCIES
from billing.lib.vat_ids import InvalidVatId, normalize_vat_id

CURRENCY_CHOICES = [(code, code) for code in CURRENCIES]
currency_validator = RegexValidator(r"^[A-Z]{3}$", "Currency must be a three-letter ISO 4217 code.")


def default_currency() -> str:
    """New accounts bill in the DEFAULT_CURRENCY setting unless given another currency."""
    return settings.DEFAULT_CURRENCY


def country_code_field() -> models.CharField:
    # `country` stays the free text printed in the address; this code is what
    # the tax treatment and the e-invoices read.
    return models.CharField(
        "country code",
        max_length=2,
        blank=True,
        choices=COUNTRY_CHOICES,
        help_text="ISO 3166-1 alpha-2: decides the VAT treatment of invoices.",
    )


def _clean_vat_id(instance: Account | Seller, field: str) -> None:
    """Check and compact a VAT id in place (every service saves through full_clean)."""
    try:
        setattr(instance, field, normalize_vat_id(getattr(instance, field), instance.country_code))
    except InvalidVatId as exc:
        raise ValidationError({field: str(exc)}) from None


class AccountQuerySet(models.QuerySet["Account"]):
    def alive(self) -> AccountQuerySet:
        """Accounts that are not soft-deleted."""
        return self.exclude(state=Account.State.DELETED)

    def billable(self) -> AccountQuerySet:
        """Accounts that may be invoiced: every account not deleted. A suspended
        account still owes what it used (its usage is accepted, so it is billed)."""
        return self.exclude(state=Account.State.DELETED)


class Account(models.Model):
    """A buyer: the customer who receives invoices (3scale's buyer account)."""

    class State(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"
        DELETED = "deleted", "Deleted"

    class PaymentMethod(models.TextChoices):
        CREDIT_CARD = "credit_card", "Credit card"
        BANK_TRANSFER = "bank_transfer", "Bank transfer"

    org_name = models.CharField("organisation", max_length=255)
    billing_email = models.EmailField(blank=True)
    address_line1 = models.CharField(max_length=255, blank=True)
    address_line2 = models.CharField(max_length=255, blank=True)
    city = models.CharField(max_length=255, blank=True)
    address_state = models.CharField("state / region", max_length=255, blank=True)
    zip = models.CharField("postal code", max_length=32, blank=True)
    country = models.CharField(max_length=255, blank=True)
    country_code = country_code_field()
    phone = models.CharField(max_length=64, blank=True)
    vat_code = models.CharField(
        "VAT id",
        max_length=64,
        blank=True,
        help_text="The buyer's VAT identification number, with its country prefix "
        "(DE123456789); EU numbers are checked.",
    )
    vat_rate = models.DecimalField(
        "VAT rate (%)",
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        help_text="For an EU seller: overrides the standard rate of a domestic or "
        "EU-consumer invoice. Otherwise the rate charged.",
    )
    is_business = models.BooleanField(
        "business customer",
        default=True,
        help_text="A company buying for its business (B2B); off for a consumer.",
    )
    tax_exempt = models.BooleanField(
        default=False, help_text="Invoices carry no VAT (category E), with the reason below."
    )
    tax_exempt_reason = models.CharField(
        "exemption reason",
        max_length=255,
        blank=True,
        help_text="Printed on the invoice, e.g. 'Exempt under Article 132(1)(i) Directive 2006/112/EC'.",
    )
    currency = models.CharField(
        max_length=3,
        choices=CURRENCY_CHOICES,
        default=default_currency,
        validators=[currency_validator],
    )
    # Empty: the DEFAULT_PAYMENT_TERMS_DAYS setting, read when an invoice is issued.
    payment_terms_days = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MaxValueValidator(365)],
        help_text="Days from issue to due date. Empty: the default payment terms.",
    )
    payment_method = models.CharField(
        max_length=20, choices=PaymentMethod.choices, default=PaymentMethod.CREDIT_CARD
    )
    # A gateway token, never a card number; brand/last4/expiry are for display.
    card_token = models.CharField(max_length=128, blank=True)
    card_brand = models.CharField(max_length=32, blank=True)
    card_last4 = models.CharField(max_length=4, blank=True)
    card_exp_month = models.PositiveSmallIntegerField(null=True, blank=True)
    card_exp_year = models.PositiveSmallIntegerField(null=True, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.ACTIVE)
    deleted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects: ClassVar[AccountQuerySet] = AccountQuerySet.as_manager()  # type: ignore[assignment]

    class Meta:
        ordering = ["org_name", "id"]
        constraints = [
            models.CheckConstraint(
                name="account_state_valid",
                condition=Q(state__in=["active", "suspended", "deleted"]),
            ),
            models.CheckConstraint(
                name="account_vat_rate_range",
                condition=Q(vat_rate__isnull=True) | Q(vat_rate__gte=0, vat_rate__lte=100),
            ),
            models.CheckConstraint(
                name="account_deleted_has_timestamp",
                condition=~Q(state="deleted") | Q(deleted_at__isnull=False),
            ),
            models.CheckConstraint(
                name="account_exempt_has_reason",
                condition=Q(tax_exempt=False) | ~Q(tax_exempt_reason=""),
            ),
        ]
        indexes = [models.Index(fields=["state"], name="account_state_idx")]

    def __str__(self) -> str:
        return self.org_name

    def clean(self) -> None:
        super().clean()
        self._check_currency_change()
        _clean_vat_id(self, "vat_code")
        if self.tax_exempt and not self.tax_exempt_reason.strip():
            raise ValidationError(
                {"tax_exempt_reason": "An exempt account needs the reason printed on its invoices."}
            )

    @property
    def is_deleted(self) -> bool:
        return self.state == self.State.DELETED

    def _check_currency_change(self) -> None:
        """Refuse a new currency while an invoice still follows this account's terms
        (open or finalized) and has lines: they are priced in the old currency, and
        re-reading 10.40 USD as yen would change what is owed. Cancel or issue it first."""
        if self.pk is None:
            return
        old = Account.objects.filter(pk=self.pk).values_list("currency", flat=True).first()
        if old is None or old == self.currency:
            return
        # `invoices` is the reverse relation of Invoice.account (no import of that app).
        pending = self.invoices.filter(
            state__in=("open", "finalized"), line_items__isnull=False
        ).values_list("pk", flat=True)[:1]
        if pending:
            raise ValidationError(
                {
                    "currency": (
                        f"cannot change from {old} while invoice {pending[0]} has lines "
                        f"in {old}; issue or cancel it first"
                    )
                }
            )

    @property
    def is_billable(self) -> bool:
        """The rule of `Account.objects.billable()`, for one loaded account."""
        return self.state != self.State.DELETED

    @property
    def address(self) -> str:
        return "\n".join(part for part in (self.address_line1, self.address_line2) if part)

    @property
    def effective_payment_terms_days(self) -> int:
        """The account's own payment terms, or the default terms when it has none."""
        if self.payment_terms_days is None:
            return settings.DEFAULT_PAYMENT_TERMS_DAYS
        return self.payment_terms_days


class Seller(models.Model):
    """The issuing company printed on every invoice (one row, id 1)."""

    name = models.CharField(max_length=255, default="Your Company")
    address_line1 = models.CharField(max_length=255, blank=True)
    address_line2 = models.CharField(max_length=255, blank=True)
    city = models.CharField(max_length=255, blank=True)
    address_state = models.CharField("state / region", max_length=255, blank=True)
    zip = models.CharField("postal code", max_length=32, blank=True)
    country = models.CharField(max_length=255, blank=True)
    country_code = country_code_field()
    phone = models.CharField(max_length=64, blank=True)
    email = models.EmailField(blank=True)
    vat_id = models.CharField("VAT id", max_length=64, blank=True)
    # Registration details, printed in the footer of every document and given in
    # the e-invoices: the legal registration id (EN 16931 BT-30), the registered
    # office, and the legal form and share capital some countries require (BT-33).
    registration_id = models.CharField(
        "company registration number",
        max_length=64,
        blank=True,
        help_text="The legal registration id: e.g. the Registro Mercantil entry, the SIREN, "
        "the Handelsregister number (HRB ...), the Companies House number.",
    )
    registered_office = models.CharField(
        max_length=255, blank=True, help_text="The registered office's address, on one line."
    )
    legal_form = models.CharField(max_length=64, blank=True, help_text="e.g. S.L., SAS, GmbH, Ltd.")
    share_capital = models.CharField(
        max_length=64, blank=True, help_text="As printed, e.g. 3,000.00 EUR (required in FR)."
    )
    # The account for currencies without one of their own (SellerBankAccount).
    bank_name = models.CharField(max_length=255, blank=True)
    bank_account_holder = models.CharField(max_length=255, blank=True)
    iban = models.CharField("IBAN", max_length=64, blank=True)
    bic = models.CharField("BIC / SWIFT", max_length=32, blank=True)
    logo = models.ImageField(upload_to="seller/", blank=True)
    invoice_footer = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.CheckConstraint(name="seller_singleton", condition=Q(id=1))]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        _clean_vat_id(self, "vat_id")
        _clean_bank_ids(self)

    def bank_details(self, currency: str | None) -> dict[str, str]:
        """The account invoices in `currency` are paid to: its own, else the default one."""
        account = None
        if currency:
            account = self.bank_accounts.filter(currency=currency).first()
        if account is not None:
            return {
                "bank_name": account.bank_name,
                "bank_account_holder": account.account_holder,
                "iban": account.iban,
                "bic": account.bic,
            }
        return {
            "bank_name": self.bank_name,
            "bank_account_holder": self.bank_account_holder,
            "iban": self.iban,
            "bic": self.bic,
        }

    @property
    def address(self) -> str:
        return "\n".join(part for part in (self.address_line1, self.address_line2) if part)

    @classmethod
    def load(cls) -> Seller:
        seller, _ = cls.objects.get_or_create(id=1)
        return seller


def _clean_bank_ids(instance: Seller | SellerBankAccount) -> None:
    """Check an IBAN and a BIC (offline, python-stdnum) and store them compact."""
    from stdnum import bic as stdnum_bic
    from stdnum import iban as stdnum_iban
    from stdnum.exceptions import ValidationError as InvalidNumber

    errors = {}
    if instance.iban:
        try:
            instance.iban = stdnum_iban.validate(instance.iban)
        except InvalidNumber:
            errors["iban"] = "Not a valid IBAN (check the country code and check digits)."
    if instance.bic:
        try:
            instance.bic = stdnum_bic.validate(instance.bic)
        except InvalidNumber:
            errors["bic"] = "Not a valid BIC (8 or 11 letters and digits)."
    if errors:
        raise ValidationError(errors)


class SellerBankAccount(models.Model):
    """The seller's bank account for one currency: invoices in that currency print it
    and give it as their e-invoice's payment means (credit transfer)."""

    seller = models.ForeignKey(Seller, on_delete=models.CASCADE, related_name="bank_accounts")
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    bank_name = models.CharField(max_length=255, blank=True)
    account_holder = models.CharField(max_length=255, blank=True)
    iban = models.CharField("IBAN", max_length=64)
    bic = models.CharField("BIC / SWIFT", max_length=32, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["currency"]
        constraints = [
            models.UniqueConstraint(
                fields=["seller", "currency"], name="seller_bank_account_one_per_currency"
            )
        ]

    def __str__(self) -> str:
        return f"{self.currency}: {self.iban}"

    def clean(self) -> None:
        super().clean()
        _clean_bank_ids(self)


class ApiKey(models.Model):
    """An API key: stored as a SHA-256 hash, looked up by a short public prefix."""

    class Scope(models.TextChoices):
        READ = "read", "Read only"
        WRITE = "write", "Read and write"

    name = models.CharField(max_length=255)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    scope = models.CharField(max_length=8, choices=Scope.choices, default=Scope.READ)
    account = models.ForeignKey(
        Account,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="api_keys",
        help_text="Limit the key to this account's data. Empty: every account.",
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, editable=False
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "id"]
        verbose_name = "API key"
        constraints = [
            models.CheckConstraint(
                name="apikey_scope_valid", condition=Q(scope__in=["read", "write"])
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @staticmethod
    def hash_secret(raw_key: str) -> str:
        # Keys carry 256 bits of randomness, so a fast hash is enough: there is
        # nothing to brute-force, and lookups stay cheap on every request.
        return hashlib.sha256(raw_key.encode()).hexdigest()

    def is_usable(self, now=None) -> bool:
        now = now or timezone.now()
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > now

    @property
    def can_write(self) -> bool:
        return self.scope == self.Scope.WRITE


class IdempotencyKey(models.Model):
    """The first completed response to a POST with an Idempotency-Key, kept for 24 hours."""

    class Status(models.TextChoices):
        IN_FLIGHT = "in_flight", "In flight"
        COMPLETED = "completed", "Completed"

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="idempotency_keys")
    key = models.CharField(max_length=255)
    request_method = models.CharField(max_length=8)
    request_path = models.CharField(max_length=2048)
    request_hash = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.IN_FLIGHT)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    response_body = models.BinaryField(null=True, blank=True)
    expires_at = models.DateTimeField(db_index=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["api_key", "key"], name="idempotency_key_unique_per_api_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.status})"


class AccountCreditEntry(models.Model):
    """One movement of an account's credit balance in one currency (append-only).

    A positive amount adds to the balance (a credit note's amount the customer
    keeps, an overpayment); a negative one takes from it (credit applied to an
    invoice at issue). The balance is the sum of the entries.
    """

    class Kind(models.TextChoices):
        CREDIT_NOTE = "credit_note", "Credit note"
        OVERPAYMENT = "overpayment", "Overpayment"
        APPLIED = "applied", "Applied to an invoice"
        RELEASED = "released", "Given back by a cancelled invoice"

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="credit_entries")
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    amount = models.DecimalField(max_digits=18, decimal_places=4)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # What caused it: ids in the invoices app (no foreign key: accounts does not
    # depend on invoices).
    invoice_id = models.BigIntegerField(null=True, blank=True)
    credit_note_id = models.BigIntegerField(null=True, blank=True)
    actor = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                name="account_credit_entry_kind_valid",
                condition=Q(kind__in=["credit_note", "overpayment", "applied", "released"]),
            ),
            models.CheckConstraint(
                name="account_credit_entry_sign",
                condition=(Q(kind="applied") & Q(amount__lt=0))
                | (~Q(kind="applied") & Q(amount__gt=0)),
            ),
        ]
        indexes = [models.Index(fields=["account", "currency"], name="account_credit_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} {self.currency}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None and not self._state.adding:
            raise ValueError("Credit entries are append-only.")
        super().save(*args, **kwargs)
