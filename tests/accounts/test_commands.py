"""Ops commands of the accounts app."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from accounts.models import Account, ApiKey
from accounts.selectors import api_key_get_by_secret


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
