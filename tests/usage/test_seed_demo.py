"""The demo data command (it seeds every app; it lives in the app that depends on the others)."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.db.models import Count
from django.utils import timezone

from accounts.models import Account, Seller
from accounts.selectors import api_key_get_by_secret
from billing.lib.months import add_months
from invoices.gateways import TestGateway
from invoices.models import Invoice
from usage.models import UsageRecord


@pytest.mark.django_db
def test_seed_demo_is_idempotent_and_prints_credentials(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.DEBUG = True
    out = io.StringIO()
    call_command("seed_demo", "--usage-per-account", "5", stdout=out)
    counts = (Account.objects.count(), Invoice.objects.count(), UsageRecord.objects.count())
    states = set(Invoice.objects.values_list("state", flat=True))
    assert {"open", "finalized", "pending", "unpaid", "paid", "failed", "cancelled"} <= states
    first_key = out.getvalue().split("API key: ")[1].split()[0]
    assert api_key_get_by_secret(first_key).can_write
    out2 = io.StringIO()
    call_command("seed_demo", stdout=out2)
    assert "already present" in out2.getvalue()
    assert (Account.objects.count(), Invoice.objects.count(), UsageRecord.objects.count()) == counts
    second_key = out2.getvalue().split("API key: ")[1].split()[0]
    assert api_key_get_by_secret(second_key).is_usable()
    assert not api_key_get_by_secret(first_key).is_usable()  # the old demo key is revoked


@pytest.mark.django_db
def test_seed_demo_data_is_consistent_and_leaves_last_month_to_the_billing_run(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.DEBUG = True
    out = io.StringIO()
    call_command("seed_demo", "--usage-per-account", "5", stdout=out)

    # The credentials come last, framed; no PDF was rendered while seeding.
    lines = out.getvalue().rstrip().splitlines()
    assert lines[-1].startswith("+-") and lines[-1] == lines[-6]
    assert any("API key: bk_" in line for line in lines[-5:-1])
    assert not Invoice.objects.exclude(pdf="").exists()
    assert not list(tmp_path.rglob("*.pdf"))

    # Each card shows what the test gateway answers for its token.
    for account in Account.objects.exclude(card_token=""):
        card = TestGateway.CARDS[account.card_token]
        assert (account.card_brand, account.card_last4) == (card.brand, card.last4)
    assert {"Spain", "Germany", "France", "US"} <= set(
        Account.objects.values_list("country", flat=True)
    )
    # The seller is registered and has a bank account for every demo currency.
    seller = Seller.load()
    assert seller.registration_id and seller.registered_office
    currencies = set(Account.objects.values_list("currency", flat=True))
    assert currencies <= set(seller.bank_accounts.values_list("currency", flat=True))
    consumer = Account.objects.get(country="France")
    assert consumer.vat_rate and not consumer.vat_code

    # Last month's invoices are the background ones the run extends: no second invoice.
    last_month = add_months(timezone.now().date(), -1)
    before = Invoice.objects.count()
    call_command(
        "run_billing", "--month", f"{last_month:%Y-%m}", "--no-progress", stdout=io.StringIO()
    )
    assert Invoice.objects.count() == before
    duplicates = (
        Invoice.objects.exclude(state="cancelled")
        .values("account_id", "period")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    assert not duplicates.exists()
    assert UsageRecord.objects.filter(
        start_time__date__gte=last_month.replace(day=1), line_item__isnull=False
    ).exists()
