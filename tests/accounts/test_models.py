"""Account: the one rule for which accounts may be invoiced."""

from __future__ import annotations

import datetime as dt

import pytest

from accounts.models import Account
from tests.factories import AccountFactory


@pytest.mark.django_db
def test_billable_accounts_are_those_not_deleted():
    active = AccountFactory()
    suspended = AccountFactory(state=Account.State.SUSPENDED)
    deleted = AccountFactory(
        state=Account.State.DELETED, deleted_at=dt.datetime(2022, 1, 1, tzinfo=dt.UTC)
    )
    assert set(Account.objects.billable()) == {active, suspended}
    assert [a.is_billable for a in (active, suspended, deleted)] == [True, True, False]
