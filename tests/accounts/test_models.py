"""Account: defaults from the settings, and the one rule for which accounts may be invoiced."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import override_settings

from accounts.models import Account
from accounts.services import account_create, account_update
from invoices import services
from tests.factories import AccountFactory, make_invoice

NOW = dt.datetime(2026, 11, 3, 10, tzinfo=dt.UTC)


@pytest.mark.django_db
@override_settings(DEFAULT_CURRENCY="EUR")
def test_new_account_takes_the_default_currency():
    assert account_create(org_name="Euro GmbH").currency == "EUR"
    assert account_create(org_name="Dollar Inc", currency="USD").currency == "USD"


@pytest.mark.django_db
def test_account_without_terms_follows_the_default_terms():
    account = account_create(org_name="No Terms Ltd")
    assert account.payment_terms_days is None
    with override_settings(DEFAULT_PAYMENT_TERMS_DAYS=14):
        assert account.effective_payment_terms_days == 14
        invoice = services.invoice_issue(invoice=make_invoice(account=account), actor="t", now=NOW)
    assert invoice.due_on - invoice.issued_on == dt.timedelta(days=14)


@pytest.mark.django_db
@override_settings(DEFAULT_PAYMENT_TERMS_DAYS=14)
def test_explicit_terms_win_over_the_default_and_can_be_cleared():
    account = AccountFactory(payment_terms_days=45)
    assert account.effective_payment_terms_days == 45
    invoice = services.invoice_issue(invoice=make_invoice(account=account), actor="t", now=NOW)
    assert invoice.due_on - invoice.issued_on == dt.timedelta(days=45)
    account = account_update(account=account, payment_terms_days=None)
    assert account.effective_payment_terms_days == 14


@pytest.mark.django_db
def test_billable_accounts_are_those_not_deleted():
    active = AccountFactory()
    suspended = AccountFactory(state=Account.State.SUSPENDED)
    deleted = AccountFactory(
        state=Account.State.DELETED, deleted_at=dt.datetime(2022, 1, 1, tzinfo=dt.UTC)
    )
    assert set(Account.objects.billable()) == {active, suspended}
    assert [a.is_billable for a in (active, suspended, deleted)] == [True, True, False]
