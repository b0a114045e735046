"""List totals: exact below the limit, shared briefly above it."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.db import connection

from billing.lib import counting
from invoices.models import Invoice
from tests.factories import AccountFactory, make_invoice


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.mark.django_db
def test_small_lists_are_counted_exactly_every_time(monkeypatch):
    monkeypatch.setattr(counting, "EXACT_COUNT_LIMIT", 5)
    account = AccountFactory()
    make_invoice(account=account)
    assert counting.list_total(Invoice.objects.all()) == 1
    make_invoice(account=account)
    assert counting.list_total(Invoice.objects.all()) == 2


@pytest.mark.django_db
def test_large_lists_share_one_exact_count_for_a_moment(monkeypatch, django_assert_num_queries):
    # given a "large" list (the limit lowered so that three rows exceed it)
    monkeypatch.setattr(counting, "EXACT_COUNT_LIMIT", 2)
    # A total shared for an hour: a slow machine cannot let it expire mid-test.
    monkeypatch.setattr(counting, "COUNT_CACHE_SECONDS", 3600)
    account = AccountFactory()
    for _ in range(3):
        make_invoice(account=account)
    qs = Invoice.objects.order_by("-created_at")
    # when it is counted twice, then once more after a new invoice
    with django_assert_num_queries(2):  # the capped count, then the exact one
        assert counting.list_total(qs) == 3
    make_invoice(account=account)
    with django_assert_num_queries(1):  # the capped count only: the total is shared
        assert counting.list_total(qs) == 3
    # then another filter is its own count, and an expired entry is recounted
    assert counting.list_total(qs.filter(account=account)) == 4
    cache.clear()
    assert counting.list_total(qs) == 4


@pytest.mark.django_db
def test_a_raw_clause_is_counted_capped_then_shared_past_the_limit(monkeypatch):
    monkeypatch.setattr(counting, "EXACT_COUNT_LIMIT", 2)
    account = AccountFactory()
    clause = f"FROM {connection.ops.quote_name(Invoice._meta.db_table)} i WHERE i.account_id = %s"
    make_invoice(account=account)
    with connection.cursor() as cursor:
        assert counting.sql_total(cursor, clause, [account.pk]) == 1
        assert counting.sql_total(cursor, clause, [account.pk], capped=1) == 1  # taken as counted
        make_invoice(account=account)
        make_invoice(account=account)
        assert counting.shared_total(clause, [account.pk]) is None
        assert counting.sql_total(cursor, clause, [account.pk]) == 3
        assert counting.shared_total(clause, [account.pk]) == 3
        make_invoice(account=account)
        assert counting.sql_total(cursor, clause, [account.pk]) == 3  # shared for a moment
        assert counting.sql_total(cursor, clause, [AccountFactory().pk]) == 0
