"""The verified-key cache (billing/api/authentication.py): no query for a key verified a
moment ago, and every way a key stops working still takes effect within the stated bound."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from accounts.models import ApiKey
from accounts.services import LAST_USED_RESOLUTION, account_soft_delete, api_key_revoke
from billing.api import authentication
from billing.api.authentication import BearerKeyAuthentication, verified_keys
from tests.factories import AccountFactory, make_api_key

pytestmark = pytest.mark.django_db

TTL = 5


@pytest.fixture(autouse=True)
def _cache_on(settings):
    settings.API_KEY_CACHE_SECONDS = TTL
    settings.API_KEY_CACHE_SIZE = 100


class Clock:
    """The cache's monotonic clock, moved by hand (never a real sleep)."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(authentication, "_monotonic", clock)
    return clock


def key_queries(captured) -> list[str]:
    return [q["sql"] for q in captured.captured_queries if "accounts_apikey" in q["sql"]]


def authenticate(secret: str) -> ApiKey:
    request = Request(
        APIRequestFactory().get("/v1/invoices", HTTP_AUTHORIZATION=f"Bearer {secret}")
    )
    _, key = BearerKeyAuthentication().authenticate(request)
    return key


def test_a_cached_key_answers_the_next_request_with_no_key_query(
    client, clock, django_assert_num_queries
):
    key, secret = make_api_key(scope="read")
    headers = {"authorization": f"Bearer {secret}"}
    with CaptureQueriesContext(connection) as first:
        assert client.get("/v1/invoices", headers=headers).status_code == 200
    # The read of the key, and the first last_used_at write.
    assert len(key_queries(first)) == 2
    others = len(first.captured_queries) - 2
    clock.now += TTL - 0.5
    with django_assert_num_queries(others) as second:
        assert client.get("/v1/invoices", headers=headers).status_code == 200
    assert key_queries(second) == []


def test_a_key_revoked_elsewhere_is_refused_once_the_cache_entry_is_older_than_the_bound(
    client, clock
):
    key, secret = make_api_key(scope="read")
    headers = {"authorization": f"Bearer {secret}"}
    assert client.get("/v1/invoices", headers=headers).status_code == 200
    # Another server process revokes it: this process hears nothing.
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())
    clock.now += TTL - 0.5
    assert client.get("/v1/invoices", headers=headers).status_code == 200  # within the bound
    clock.now += 0.5
    response = client.get("/v1/invoices", headers=headers)
    assert response.status_code == 401
    assert client.get("/v1/invoices", headers=headers).status_code == 401


@pytest.mark.parametrize("change", ["scope", "deleted"])
def test_a_key_changed_elsewhere_is_read_again_after_the_bound(clock, change):
    key, secret = make_api_key(scope="read")
    assert authenticate(secret).scope == "read"
    if change == "scope":
        ApiKey.objects.filter(pk=key.pk).update(scope="write")
        clock.now += TTL
        assert authenticate(secret).can_write
    else:
        ApiKey.objects.filter(pk=key.pk).delete()
        clock.now += TTL
        with pytest.raises(AuthenticationFailed):
            authenticate(secret)


def test_a_revocation_in_this_process_takes_effect_at_once(client, clock):
    key, secret = make_api_key(scope="read")
    headers = {"authorization": f"Bearer {secret}"}
    assert client.get("/v1/invoices", headers=headers).status_code == 200
    api_key_revoke(api_key=key)
    assert client.get("/v1/invoices", headers=headers).status_code == 401


def test_deleting_the_keys_account_in_this_process_takes_effect_at_once(client, clock):
    account = AccountFactory()
    key, secret = make_api_key(scope="read", account=account)
    headers = {"authorization": f"Bearer {secret}"}
    assert client.get("/v1/invoices", headers=headers).status_code == 200
    account_soft_delete(account=account)
    assert client.get("/v1/invoices", headers=headers).status_code == 401


def test_a_scope_change_saved_in_this_process_takes_effect_at_once(clock):
    key, secret = make_api_key(scope="read")
    assert not authenticate(secret).can_write
    key.scope = ApiKey.Scope.WRITE
    key.save()  # the admin's change form
    assert authenticate(secret).can_write


def test_expiry_is_exact_even_for_a_cached_key(client, clock):
    expires_at = timezone.now() + dt.timedelta(hours=1)
    key, secret = make_api_key(scope="read", expires_at=expires_at)
    headers = {"authorization": f"Bearer {secret}"}
    assert client.get("/v1/invoices", headers=headers).status_code == 200
    with time_machine.travel(expires_at + dt.timedelta(microseconds=1), tick=False):
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/v1/invoices", headers=headers).status_code == 401
    assert key_queries(captured) == []  # refused by the cached expires_at itself


def test_a_wrong_secret_with_a_valid_prefix_is_never_cached(clock):
    key, secret = make_api_key(scope="read")
    wrong = secret[:-4] + ("aaaa" if not secret.endswith("aaaa") else "bbbb")
    for _ in range(2):
        with CaptureQueriesContext(connection) as captured, pytest.raises(AuthenticationFailed):
            authenticate(wrong)
        assert len(key_queries(captured)) == 1  # read and refused every time
    assert len(verified_keys) == 0
    assert authenticate(secret).pk == key.pk
    with CaptureQueriesContext(connection) as captured, pytest.raises(AuthenticationFailed):
        authenticate(wrong)  # the right key's entry does not answer for it
    assert len(key_queries(captured)) == 1


def test_an_entry_answers_only_for_its_own_key(clock):
    first, first_secret = make_api_key(scope="read", name="first")
    second, second_secret = make_api_key(scope="write", name="second")
    assert authenticate(first_secret).pk == first.pk
    assert authenticate(second_secret).pk == second.pk
    # An entry offered under another key's digest is not kept.
    verified_keys.clear()
    verified_keys.put(ApiKey.hash_secret(second_secret), first, max_size=100)
    assert len(verified_keys) == 0
    for _ in range(2):
        assert authenticate(first_secret).pk == first.pk
        assert not authenticate(first_secret).can_write
        assert authenticate(second_secret).pk == second.pk
        assert authenticate(second_secret).can_write


def test_the_cache_never_holds_the_secret(clock):
    _, secret = make_api_key(scope="read")
    authenticate(secret)
    assert secret not in repr(verified_keys._entries)
    assert list(verified_keys._entries) == [ApiKey.hash_secret(secret)]


def test_the_cache_holds_at_most_its_size_and_drops_the_least_recently_used(clock, settings):
    settings.API_KEY_CACHE_SIZE = 3
    keys = [make_api_key(scope="read", name=f"key {n}") for n in range(5)]
    for _, secret in keys:
        authenticate(secret)
    assert len(verified_keys) == 3
    for _, secret in keys[2:]:
        with CaptureQueriesContext(connection) as captured:
            authenticate(secret)
        assert key_queries(captured) == []
    with CaptureQueriesContext(connection) as captured:
        authenticate(keys[0][1])  # dropped: read again
    assert len(key_queries(captured)) == 1
    assert len(verified_keys) == 3


def test_each_request_gets_its_own_key_instance(clock):
    _, secret = make_api_key(scope="read")
    first = authenticate(secret)
    second = authenticate(secret)
    assert first.pk == second.pk
    assert first is not second


def test_a_zero_ttl_reads_the_key_on_every_request(clock, settings):
    settings.API_KEY_CACHE_SECONDS = 0
    _, secret = make_api_key(scope="read")
    for _ in range(2):
        with CaptureQueriesContext(connection) as captured:
            authenticate(secret)
        assert len(key_queries(captured)) >= 1
    assert len(verified_keys) == 0


def test_last_used_at_is_written_at_most_once_per_resolution(clock):
    key, secret = make_api_key(scope="read")
    start = timezone.now()
    updates = []
    with time_machine.travel(start, tick=False):
        for _ in range(3):
            with CaptureQueriesContext(connection) as captured:
                authenticate(secret)
            updates += [sql for sql in key_queries(captured) if sql.startswith("UPDATE")]
    assert len(updates) == 1
    with time_machine.travel(start + LAST_USED_RESOLUTION, tick=False):
        with CaptureQueriesContext(connection) as captured:
            authenticate(secret)  # still cached: the monotonic clock did not move
        assert [sql for sql in key_queries(captured) if sql.startswith("UPDATE")] != []
        assert len(key_queries(captured)) == 1
    key.refresh_from_db()
    assert key.last_used_at == start + LAST_USED_RESOLUTION
