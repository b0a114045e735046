"""The PostgreSQL backend's health check (billing/db/postgresql): no round trip for an idle
connection, and a connection the server ended is found unusable before it is used."""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_an_idle_connection_is_usable_without_asking_the_server(monkeypatch):
    connection.ensure_connection()
    asked: list[str] = []
    original = psycopg.Cursor.execute

    def execute(self, query, *args, **kwargs):
        asked.append(str(query))
        return original(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", execute)
    assert connection.is_usable()
    assert asked == []


def test_a_connection_the_server_ended_is_not_usable():
    # given this process's connection, idle
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    # when the server ends it (a restart, an administrator, an idle timeout)
    with psycopg.connect(
        dbname=connection.settings_dict["NAME"],
        host=connection.settings_dict["HOST"] or None,
        port=connection.settings_dict["PORT"] or None,
        user=connection.settings_dict["USER"] or None,
        autocommit=True,
    ) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
        for _ in range(100):
            found = other.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid])
            if found.fetchone() is None:
                break
            other.execute("SELECT pg_sleep(0.02)")
    # then the check says so, and the next request's check opens a new connection
    assert not connection.is_usable()
    connection.health_check_done = False  # type: ignore[attr-defined]  # as a request starts
    connection.close_if_health_check_failed()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != pid
