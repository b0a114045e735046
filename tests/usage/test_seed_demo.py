"""The demo data command (it seeds every app; it lives in the app that depends on the others)."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from accounts.models import Account
from accounts.selectors import api_key_get_by_secret
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
