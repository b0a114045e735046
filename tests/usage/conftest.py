"""Fixtures shared by the usage tests."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.support.usage import client_for


@pytest.fixture
def owner_client(owner) -> APIClient:
    return client_for(owner.secret)
