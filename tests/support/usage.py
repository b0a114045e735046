"""Usage records as a client sends them, and /v1 clients."""

from __future__ import annotations

import itertools

from rest_framework.test import APIClient

_ids = itertools.count(1)


def record(**overrides) -> dict:
    """A valid usage record as a client sends it (the pre-rated record's fields plus the client's id)."""
    data = {
        "id": f"rec-{next(_ids)}",
        "resource_id": "i-1234567890abcdef0",
        "resource_name": "web-server-1",
        "service": "EC2",
        "region": "us-west-1",
        "start_time": "2022-01-01T00:00:00Z",
        "end_time": "2022-01-01T01:00:00Z",
        "cost": "0.50",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def client_for(secret: str | None) -> APIClient:
    client = APIClient()
    if secret:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client
