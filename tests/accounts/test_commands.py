"""Ops commands of the accounts app."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from accounts.models import Account, ApiKey
from accounts.selectors import api_key_get_by_secret
from usage.management.commands import seed_demo


@pytest.mark.django_db
def test_seed_demo_refuses_in_production_unless_forced(settings, tmp_path, monkeypatch):
    settings.MEDIA_ROOT = tmp_path
    settings.DEBUG = False
    admin = get_user_model().objects.create_superuser("admin", "a@example.test", "s3cret-Pass!")
    with pytest.raises(CommandError, match="DEBUG off"):
        call_command("seed_demo", stdout=io.StringIO())
    assert not Account.objects.exists() and not ApiKey.objects.exists()
    admin.refresh_from_db()
    assert admin.check_password("s3cret-Pass!")
    seeded = []
    monkeypatch.setattr(seed_demo.Command, "_seed", lambda self, usage: seeded.append(usage))
    call_command("seed_demo", "--force", "--usage-per-account", "1", stdout=io.StringIO())
    assert seeded == [1]


@pytest.mark.django_db
def test_create_api_key_prints_secret_once_and_stores_hash():
    account = Account.objects.create(org_name="A")
    out = io.StringIO()
    call_command(
        "create_api_key",
        "--name",
        "ci",
        "--scope",
        "read",
        "--account",
        str(account.pk),
        stdout=out,
    )
    raw = out.getvalue().strip().splitlines()[-1]
    key = api_key_get_by_secret(raw)
    assert key.scope == "read" and key.account == account
    assert raw not in key.key_hash and ApiKey.hash_secret(raw) == key.key_hash
