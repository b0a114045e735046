"""Load demo data: accounts, a year of invoices in every state, payments and usage.

Safe to run again: the data is created once; the admin password is reset and
a fresh demo API key is printed on every run (older demo keys are revoked).
It refuses to run when DEBUG is off (production) unless given --force: it would
reset the `admin` login to a published password.

It renders no PDF: the demo's issued invoices are rendered when first opened
(`render_pdfs --missing` stores them all). Last month's invoices are background
invoices left open or finalized, so `run_billing --month` for that month extends
them with the month's usage instead of adding a second invoice per account.
"""

from __future__ import annotations

import datetime as dt
import random
import sys
from decimal import Decimal
from typing import cast

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone
from tqdm import tqdm

from accounts.models import Account, ApiKey, Seller, SellerBankAccount
from accounts.services import api_key_create, api_key_revoke
from billing.lib.months import add_months
from invoices import services as inv
from invoices.exceptions import ChargeFailed
from invoices.gateways import TestGateway
from invoices.models import Invoice
from invoices.tasks import pdf_rendering_deferred
from usage import subscriptions as pricing
from usage.models import UsageRecord

ACTOR = "system:seed_demo"
DEMO_KEY_NAME = "demo key (seed_demo)"
ACCOUNTS = [
    # org, email, city, country, currency, vat, card token, terms
    ("Acme Rockets", "billing@acme.test", "Barcelona", "Spain", "EUR", "21.00", "tok_visa", 30),
    ("Globex Corp", "ap@globex.test", "Springfield", "US", "USD", None, "tok_mastercard", 30),
    ("Initech", "finance@initech.test", "Austin", "US", "USD", None, "tok_chargeDeclined", 15),
    (
        "Umbrella GmbH",
        "rechnung@umbrella.test",
        "Berlin",
        "Germany",
        "EUR",
        "19.00",
        "tok_amex",
        30,
    ),
    ("Hooli", "payables@hooli.test", "Palo Alto", "US", "USD", "7.25", "tok_visa", 45),
    ("Tyrell KK", "keiri@tyrell.test", "Tokyo", "Japan", "JPY", "10.00", "tok_visa", 30),
    ("Wayne Ltd", "accounts@wayne.test", "London", "United Kingdom", "GBP", "20.00", "", 30),
    ("Stark Industries", "ar@stark.test", "New York", "US", "USD", None, "tok_visa", 30),
    # A consumer in France: French VAT, no VAT id.
    (
        "Camille Martin",
        "camille@martin.test",
        "Lyon",
        "France",
        "EUR",
        "20.00",
        "tok_mastercard",
        14,
    ),
]
# Buyers without a VAT id (consumers).
CONSUMERS = {"Camille Martin"}
# The card the TestGateway answers for each token: brand and last four digits.
CARDS = TestGateway.CARDS
# The VAT treatment reads ISO codes and VAT ids: a Spanish seller bills Spain
# (domestic), Germany (a business with a VAT id: reverse charge), France (a
# consumer: French VAT) and the rest of the world (outside the EU).
COUNTRY_CODES = {
    "Spain": "ES", "US": "US", "Germany": "DE", "Japan": "JP", "United Kingdom": "GB",
    "France": "FR",
}  # fmt: skip
VAT_IDS = {"Acme Rockets": "ESA12345674", "Umbrella GmbH": "DE136695976"}
PLAN_FEES = {"EUR": "49.00", "USD": "59.00", "GBP": "45.00", "JPY": "6500"}
# The seller's bank account for each demo currency: (currency, bank, IBAN, BIC).
DEMO_BANK_ACCOUNTS = [
    ("EUR", "CaixaBank", "ES7921000813610123456789", "CAIXESBBXXX"),
    ("USD", "Barclays (USD account)", "GB82WEST12345698765432", "WESTGB2L"),
    ("GBP", "Barclays", "GB33BUKB20201555555555", "BUKBGB22"),
    ("JPY", "ABN AMRO (JPY account)", "NL91ABNA0417164300", "ABNANL2A"),
]
SERVICES = [("EC2", "0.0416"), ("RDS", "0.0680"), ("S3", "0.0050"), ("Lambda", "0.0009")]
REGIONS = ["us-west-1", "us-east-1", "eu-west-1"]


def _at(day: dt.date, hour: int = 10) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.UTC)


class Command(BaseCommand):
    help = "Load demo data (idempotent) and print an admin login and a write API key."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--usage-per-account", type=int, default=150)
        parser.add_argument(
            "--force",
            action="store_true",
            help="Run even when DEBUG is off (resets the admin password to a known one).",
        )

    def handle(self, *args, **options) -> None:
        if not settings.DEBUG and not options["force"]:
            raise CommandError(
                "seed_demo loads demo data and resets the admin login to a known password; "
                "it refuses to run with DEBUG off. Use DEBUG=1 (as `make seed` does) or --force."
            )
        if Account.objects.filter(org_name=ACCOUNTS[0][0]).exists():
            self.stdout.write("Demo data already present; keeping it.")
        else:
            # The demo's invoices render their PDFs when first opened (or with
            # `render_pdfs --missing`): rendering about 90 of them here took minutes.
            with pdf_rendering_deferred():
                self._seed(options["usage_per_account"])
        self._print_credentials()

    @transaction.atomic
    def _seed(self, usage_per_account: int) -> None:
        rng = random.Random(42)
        seller = Seller.load()
        seller.name = "Billing Demo S.L."
        seller.address_line1 = "Carrer de Mallorca 100"
        seller.city, seller.zip, seller.country = "Barcelona", "08029", "Spain"
        seller.country_code = "ES"
        seller.vat_id, seller.email = "ESB58378431", "billing@demo.test"
        seller.bank_name, seller.bank_account_holder = "Banco Demo", "Billing Demo S.L."
        seller.iban, seller.bic = "ES91 2100 0418 4502 0005 1332", "CAIXESBBXXX"
        seller.registration_id = "B58378431 (Registro Mercantil de Barcelona, hoja B-123456)"
        seller.registered_office = "Carrer de Mallorca 100, 08029 Barcelona, Spain"
        seller.legal_form = "Sociedad Limitada"
        seller.share_capital = "3,000.00 EUR"
        seller.invoice_footer = "Thank you for your business."
        seller.save()
        # One account per demo currency (the profile's IBAN serves any other).
        for currency, bank, iban, bic in DEMO_BANK_ACCOUNTS:
            SellerBankAccount.objects.update_or_create(
                seller=seller,
                currency=currency,
                defaults={
                    "bank_name": bank,
                    "account_holder": seller.name,
                    "iban": iban,
                    "bic": bic,
                },
            )

        now = timezone.now()
        today = now.date()
        accounts = []
        for org, email, city, country, currency, vat, token, terms in ACCOUNTS:
            vat_code = f"VAT-{org[:3].upper()}{rng.randint(1000, 9999)}" if vat else ""
            if org in CONSUMERS:
                vat_code = ""
            accounts.append(
                Account.objects.create(
                    org_name=org,
                    billing_email=email,
                    address_line1=f"{rng.randint(1, 400)} Market Street",
                    city=city,
                    zip=f"{rng.randint(10000, 99999)}",
                    country=country,
                    country_code=COUNTRY_CODES[country],
                    currency=currency,
                    vat_rate=Decimal(vat) if vat else None,
                    vat_code=VAT_IDS.get(org, vat_code),
                    is_business=org not in CONSUMERS,
                    card_token=token,
                    card_brand=CARDS[token].brand if token else "",
                    card_last4=CARDS[token].last4 if token else "",
                    card_exp_month=12 if token else None,
                    card_exp_year=2030 if token else None,
                    payment_method="credit_card" if token else "bank_transfer",
                    payment_terms_days=terms,
                    created_at=now - dt.timedelta(days=400),
                )
            )
        counts: dict[str, int] = {}
        months = range(11, -1, -1)
        progress = tqdm(
            total=len(months) * len(accounts), desc="demo invoices", unit="invoice",
            file=sys.stderr, disable=None, leave=False,
        )  # fmt: skip
        with progress:
            for months_ago in months:
                period = add_months(today, -months_ago)
                for index, account in enumerate(accounts):
                    invoice = self._invoice_for(account, period, months_ago, index, rng)
                    counts[invoice.state] = counts.get(invoice.state, 0) + 1
                    progress.update()
        usage_count = self._usage(accounts, today, usage_per_account, rng)
        usage_count += self._pricing(accounts, today, rng)
        summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
        self.stdout.write(
            f"Created {len(accounts)} accounts, {sum(counts.values())} invoices ({summary}) "
            f"and {usage_count} usage records."
        )

    def _invoice_for(self, account, period, months_ago, index, rng) -> Invoice:
        created = _at(period, 9)
        # Background invoices, as the monthly billing run makes them: a run over
        # these months extends them instead of adding a second invoice.
        invoice = inv.invoice_create(
            account=account, period=period, creation_type=Invoice.CreationType.BACKGROUND,
            actor=ACTOR, now=created,
        )  # fmt: skip
        fee = Decimal(PLAN_FEES[account.currency])
        inv.line_item_add(
            invoice=invoice, name="Pro plan", description=f"Monthly fee, {period:%B %Y}",
            unit_price=fee, type="plan_fee", actor=ACTOR, now=created,
        )  # fmt: skip
        for _ in range(rng.randint(1, 3)):
            service, price = rng.choice(SERVICES)
            qty = Decimal(rng.randint(10, 900))
            unit = Decimal(price) * (100 if account.currency == "JPY" else 1)
            inv.line_item_add(
                invoice=invoice, name=f"{service} usage", description="Metered usage",
                quantity=qty, unit_price=unit, type="usage", actor=ACTOR, now=created,
            )  # fmt: skip
        if months_ago == 0:
            if index == 7:
                return inv.invoice_cancel(
                    invoice=invoice, actor=ACTOR, reason="duplicate draft", now=created
                )
            return invoice
        issue_at = _at(add_months(period, 1) + dt.timedelta(days=2))
        if months_ago == 1:
            # Last month waits for its billing run (`run_billing --month`), which
            # adds the month's usage to these invoices: finalized or still open.
            if index % 2 == 0:
                return inv.invoice_finalize(
                    invoice=invoice, actor=ACTOR, now=_at(add_months(period, 1))
                )
            return invoice
        invoice = inv.invoice_issue(invoice=invoice, actor=ACTOR, now=issue_at)
        due_on = cast(dt.date, invoice.due_on)  # set by issuing
        if due_on > timezone.now().date():
            return invoice  # pending, not yet due
        if index == 6:  # bank transfer customer
            if months_ago >= 3:
                invoice = inv.invoice_mark_paid(
                    invoice=invoice, actor=ACTOR, reference=f"SEPA-{invoice.friendly_id}",
                    now=issue_at + dt.timedelta(days=12),
                )  # fmt: skip
            return invoice
        if index == 2:  # declined card: unpaid, then failed after three tries
            attempts = 3 if months_ago >= 4 else 1 + (months_ago % 2)
            for attempt in range(attempts):
                try:
                    inv.invoice_charge(
                        invoice=invoice, actor=ACTOR, automatic=True,
                        now=_at(due_on + dt.timedelta(days=3 * attempt)),
                    )  # fmt: skip
                except ChargeFailed:
                    pass
            invoice.refresh_from_db()
            return invoice
        if months_ago == 5 and index == 4:
            return inv.invoice_cancel(invoice=invoice, actor=ACTOR, reason="credited", now=issue_at)
        return inv.invoice_charge(invoice=invoice, actor=ACTOR, automatic=True, now=_at(due_on))

    def _usage(self, accounts, today, per_account, rng) -> int:
        rows = []
        for account in accounts:
            for months_ago in (1, 0):
                period = add_months(today, -months_ago)
                days = 28 if months_ago else max(today.day, 1)
                for n in range(per_account):
                    service, price = rng.choice(SERVICES)
                    start = _at(period, 0) + dt.timedelta(
                        days=rng.randrange(days), hours=rng.randrange(24)
                    )
                    duration = rng.choice([600, 1800, 3600, 7200])
                    # Prices are per hour in the account's currency (yen have no cents).
                    hourly = Decimal(price) * (100 if account.currency == "JPY" else 1)
                    rows.append(
                        UsageRecord(
                            account=account,
                            client_id=f"demo-{account.pk}-{period:%Y%m}-{n}",
                            resource_id=f"i-{rng.getrandbits(40):010x}",
                            resource_name=f"{service.lower()}-{rng.randint(1, 9)}",
                            service=service,
                            region=rng.choice(REGIONS),
                            start_time=start,
                            end_time=start + dt.timedelta(seconds=duration),
                            duration=duration,
                            cost=(hourly * duration / 3600).quantize(Decimal("0.000001")),
                        )
                    )
        UsageRecord.objects.bulk_create(rows, batch_size=2000)
        return len(rows)

    def _pricing(self, accounts, today, rng) -> int:
        """Metrics, three USD plans, subscriptions that start, change and end mid-month,
        and metered usage for them over last month and this one."""
        for code, name, unit, aggregation in (
            ("api_calls", "API calls", "calls", "sum"),
            ("storage_gb", "Storage", "GB", "max"),
            ("active_users", "Active users", "users", "unique_count"),
        ):
            pricing.metric_create(code=code, name=name, unit=unit, aggregation=aggregation)
        free = pricing.plan_create(
            code="free", name="Free", currency="USD",
            charges=[{"metric": "api_calls", "model": "per_unit",
                      "unit_amount": Decimal("0.002"), "free_units": Decimal(10000)}],
        )  # fmt: skip
        scale = pricing.plan_create(
            code="scale", name="Scale", currency="USD", amount=Decimal("100.00"),
            setup_fee=Decimal("50.00"), trial_days=0,
            charges=[
                {"metric": "api_calls", "model": "graduated", "tiers": [
                    {"up_to": 1000, "unit_amount": Decimal("0")},
                    {"up_to": 10000, "unit_amount": Decimal("0.01")},
                    {"up_to": None, "unit_amount": Decimal("0.005")},
                ]},
                {"metric": "active_users", "model": "package", "unit_amount": Decimal("10.00"),
                 "package_size": 5, "free_units": Decimal(5)},
            ],
        )  # fmt: skip
        volume = pricing.plan_create(
            code="volume", name="Volume", currency="USD", amount=Decimal("250.00"),
            trial_days=14,
            charges=[{"metric": "storage_gb", "model": "volume", "tiers": [
                {"up_to": 100, "unit_amount": Decimal("0.50"), "flat_amount": Decimal("0")},
                {"up_to": 1000, "unit_amount": Decimal("0.30"), "flat_amount": Decimal("20")},
                {"up_to": None, "unit_amount": Decimal("0.10"), "flat_amount": Decimal("100")},
            ]}],
        )  # fmt: skip
        last_month = add_months(today, -1)
        globex, initech, hooli, stark = (accounts[i] for i in (1, 2, 4, 7))
        # Starts mid-month.
        pricing.subscription_create(
            account=globex, plan=scale, start_date=last_month.replace(day=11)
        )
        # Starts on the free tier, moves to volume mid-month.
        first = pricing.subscription_create(account=hooli, plan=free, start_date=last_month)
        pricing.subscription_change_plan(
            subscription=first, plan=volume, date=last_month.replace(day=16)
        )
        # On the free tier throughout.
        pricing.subscription_create(account=initech, plan=free, start_date=last_month)
        # Ends mid-month.
        ended = pricing.subscription_create(
            account=stark, plan=scale, start_date=add_months(today, -2)
        )
        pricing.subscription_cancel(subscription=ended, date=last_month.replace(day=10))

        rows = []
        for account in (globex, initech, hooli, stark):
            for months_ago in (1, 0):
                period = add_months(today, -months_ago)
                days = 28 if months_ago else max(today.day, 1)
                for day in range(days):
                    start = _at(period, 0) + dt.timedelta(days=day, hours=rng.randrange(24))
                    for metric, quantity, resource in (
                        ("api_calls", Decimal(rng.randint(100, 900)), ""),
                        ("storage_gb", Decimal(rng.randint(50, 1200)), ""),
                        ("active_users", Decimal(1), f"user-{rng.randint(1, 18)}"),
                    ):
                        rows.append(
                            UsageRecord(
                                account=account,
                                client_id=f"demo-{account.pk}-{metric}-{start:%Y%m%d}",
                                resource_id=resource,
                                service="",
                                region="",
                                start_time=start,
                                end_time=start,
                                duration=0,
                                metric=metric,
                                quantity=quantity,
                            )
                        )
        UsageRecord.objects.bulk_create(rows, batch_size=2000)
        return len(rows)

    def _print_credentials(self) -> None:
        User = get_user_model()
        admin, _ = User.objects.get_or_create(
            username="admin",
            defaults={"email": "admin@localhost", "is_staff": True, "is_superuser": True},
        )
        admin.is_staff = admin.is_superuser = True
        admin.set_password("admin")
        admin.save()
        for old in ApiKey.objects.filter(name=DEMO_KEY_NAME, revoked_at__isnull=True):
            api_key_revoke(api_key=old)
        _, raw = api_key_create(name=DEMO_KEY_NAME, scope=ApiKey.Scope.WRITE)
        lines = [
            "Admin:   http://127.0.0.1:8000/admin/  user: admin  password: admin",
            f"API key: {raw}   (write scope, all accounts)",
            "Try:     curl -u " + raw + ": http://127.0.0.1:8000/api/invoices.json",
            "Docs:    http://127.0.0.1:8000/api/docs/   Dashboard: http://127.0.0.1:8000/staff/dashboard/",
        ]
        width = max(len(line) for line in lines)
        self.stdout.write("")
        self.stdout.write("+" + "-" * (width + 2) + "+")
        for line in lines:
            self.stdout.write(f"| {line.ljust(width)} |")
        self.stdout.write("+" + "-" * (width + 2) + "+")
