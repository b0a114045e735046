"""Staff sign-in throttling: per username and per address, a 429 that says when."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from django.contrib import admin
from django.core.cache import cache
from django.test import RequestFactory

from billing.admin_site import StaffAdminSite
from billing.lib.login_throttle import client_ip

LOGIN = "/admin/login/"
PASSWORD = "fin-password-123"


@pytest.fixture(autouse=True)
def empty_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def fin(db, django_user_model):
    return django_user_model.objects.create_user("fin", password=PASSWORD, is_staff=True)


def sign_in(client, username="fin", password=PASSWORD, ip="10.0.0.1", **extra):
    return client.post(
        LOGIN, {"username": username, "password": password, "next": "/admin/"},
        REMOTE_ADDR=ip, **extra,
    )  # fmt: skip


def test_the_admin_site_is_the_throttled_one():
    assert isinstance(admin.site, StaffAdminSite)


@pytest.mark.django_db
class TestThrottling:
    def test_five_failures_lock_the_username_even_with_the_right_password(self, client, fin):
        for _ in range(5):
            response = sign_in(client, password="wrong")
            assert response.status_code == 200  # the usual "please enter the correct…"
        # from another address, with the right password: still refused
        refused = sign_in(client, ip="10.9.9.9")
        assert refused.status_code == 429
        assert int(refused["Retry-After"]) == 15 * 60
        assert b"Too many failed sign-in attempts" in refused.content
        assert b"Try again in 15 minutes" in refused.content
        assert "_auth_user_id" not in client.session

    def test_the_lockout_ends(self, client, fin):
        start = dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC)
        with time_machine.travel(start, tick=False):
            for _ in range(5):
                sign_in(client, password="wrong")
            assert sign_in(client).status_code == 429
        with time_machine.travel(start + dt.timedelta(minutes=14), tick=False):
            assert sign_in(client).status_code == 429
        with time_machine.travel(start + dt.timedelta(minutes=15, seconds=1), tick=False):
            response = sign_in(client)
        assert response.status_code == 302 and response["Location"] == "/admin/"

    def test_five_failures_from_one_address_lock_that_address(self, client, fin):
        for n in range(5):
            sign_in(client, username=f"guess{n}", password="wrong", ip="10.6.6.6")
        assert sign_in(client, ip="10.6.6.6").status_code == 429
        assert sign_in(client, ip="10.0.0.2").status_code == 302

    def test_a_success_clears_the_username_count(self, client, fin):
        for _ in range(4):
            sign_in(client, password="wrong", ip="10.0.0.3")
        assert sign_in(client, ip="10.0.0.4").status_code == 302
        client.logout()
        for _ in range(4):
            sign_in(client, password="wrong", ip="10.0.0.5")
        assert sign_in(client, ip="10.0.0.6").status_code == 302

    def test_username_case_does_not_dodge_the_count(self, client, fin):
        for n, name in enumerate(("fin", "FIN", "Fin", "fIn", "fiN")):
            sign_in(client, username=name, password="wrong", ip=f"10.1.0.{n}")
        assert sign_in(client, ip="10.2.0.1").status_code == 429

    def test_limits_come_from_settings(self, client, fin, settings):
        settings.ADMIN_LOGIN_MAX_FAILURES = 2
        settings.ADMIN_LOGIN_LOCKOUT_SECONDS = 60
        sign_in(client, password="wrong")
        sign_in(client, password="wrong")
        refused = sign_in(client)
        assert refused.status_code == 429 and b"Try again in 1 minute." in refused.content

    def test_empty_fields_are_not_failures(self, client, fin):
        for _ in range(6):
            assert sign_in(client, password="").status_code == 200
        assert sign_in(client).status_code == 302

    def test_the_lockout_is_logged_once(self, client, fin, caplog):
        with caplog.at_level("WARNING", logger="billing.security"):
            for _ in range(7):
                sign_in(client, password="wrong")
        assert len([r for r in caplog.records if "locked out" in r.getMessage()]) == 1


class TestClientAddress:
    def request(self, forwarded=None):
        extra: dict[str, Any] = {"REMOTE_ADDR": "127.0.0.1"}
        if forwarded is not None:
            extra["HTTP_X_FORWARDED_FOR"] = forwarded
        return RequestFactory().get("/", **extra)

    def test_without_trusted_proxies_the_header_is_ignored(self):
        assert client_ip(self.request("1.2.3.4")) == "127.0.0.1"

    def test_behind_one_proxy_the_rightmost_entry_counts(self):
        # a client forging the header only adds entries on the left
        assert client_ip(self.request("6.6.6.6, 1.2.3.4"), trusted_proxies=1) == "1.2.3.4"
        assert client_ip(self.request("6.6.6.6, 1.2.3.4, 10.0.0.9"), 2) == "1.2.3.4"

    def test_a_missing_header_falls_back_to_the_peer(self):
        assert client_ip(self.request(), trusted_proxies=1) == "127.0.0.1"

    @pytest.mark.django_db
    def test_the_setting_is_used_for_sign_in(self, client, fin, settings):
        settings.TRUSTED_PROXIES = 1
        for n in range(5):
            sign_in(client, password="wrong", HTTP_X_FORWARDED_FOR=f"6.6.6.6, 1.2.3.{n}")
        # five clients behind the same proxy: the username is locked, no address is
        assert sign_in(client, HTTP_X_FORWARDED_FOR="1.2.3.9").status_code == 429
        assert (
            sign_in(client, username="x", password="y", HTTP_X_FORWARDED_FOR="1.2.3.0").status_code
            == 200
        )


@pytest.mark.django_db
def test_a_cache_outage_does_not_lock_staff_out(client, fin, monkeypatch, caplog):
    def down(*args, **kwargs):
        raise ConnectionError("cache down")

    for name in ("get", "add", "incr", "set", "delete"):
        monkeypatch.setattr(cache, name, down)
    assert sign_in(client, password="wrong").status_code == 200
    assert sign_in(client).status_code == 302
    assert "throttle unavailable" in caplog.text
