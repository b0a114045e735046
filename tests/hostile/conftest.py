"""Fixtures of the hostile-input tests; the harness is tests/support/hostile.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import transaction

from tests.support.hostile import Hostile, World, build_world


@pytest.fixture
def world(db) -> World:
    return build_world()


@pytest.fixture(scope="module")
def shared_world(django_db_setup, django_db_blocker):
    """One world for a whole module of hostile requests: built once inside an outer
    transaction; each test runs in a savepoint within it (pytest-django's `db`), so
    whatever a test writes is rolled back to this world, and the module's end rolls
    the world back too."""
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            world = build_world()
        except BaseException:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)
            raise
    yield world
    with django_db_blocker.unblock():
        transaction.set_rollback(True)
        outer.__exit__(None, None, None)


@pytest.fixture
def hostile(request) -> Iterator[Hostile]:
    sender = Hostile(request)
    yield sender
    sender.flush()
