"""Every parameter of every write endpoint (and list filter) of /api, /admin/api and /v1,
with every hostile value of its family (tests/hostile/cases.py).

A write must answer 4xx, name the field, and leave the database as it was. A read
(a list filter, a report parameter) must not answer 5xx; a 4xx must name the
parameter, and a filter that answers 200 must match nothing. No answer may carry
an internal Python message.
"""

from __future__ import annotations

import json

import pytest

from tests.hostile.cases import body_with, case_id, cases, query_with
from tests.support.hostile import (
    assert_no_leak,
    body_text,
    changed,
    fingerprint,
    threescale_names,
    v1_names,
)

MALFORMED_V1_CODES = {"malformed_request", "bad_request"}


@pytest.fixture
def world(shared_world, db):
    """The module's world; each test's writes are rolled back to it."""
    return shared_world


def _send(hostile, world, target, value):
    path = world.fill(target.path)
    secret = world.provider_secret if target.key == "provider" else world.owner_secret
    bearer = target.api == "v1"
    if target.query_names:
        path += "?" + query_with(target.base_query, target.query_names, value.query)
        return hostile.send(target.method, path, secret=secret, bearer=bearer)
    if target.base_query:
        path += "?" + target.base_query
    body = body_with(target.base(world.ids), target.at, value.json)
    return hostile.send(target.method, path, body=body, secret=secret, bearer=bearer)


def _names(response, target) -> bool:
    check = threescale_names if target.api == "3scale" else v1_names
    return any(check(response, name) for name in (target.field, *target.also_named))


def _malformed(response, target) -> bool:
    """A body refused as a whole (it could not be read), without a field."""
    if response.status_code != 400:
        return False
    if target.api == "3scale":
        return True
    try:
        code = json.loads(body_text(response))["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return False
    return code in MALFORMED_V1_CODES


def _matched_nothing(response, target) -> bool:
    data = json.loads(body_text(response))
    if target.api == "3scale":
        return data.get("invoices") == []
    return data == []


def _check(response, target, value, before) -> None:
    status = response.status_code
    text = body_text(response)[:300]
    assert status < 500, f"{status}: {text}"
    assert_no_leak(response)
    assert not changed(before, fingerprint()), "the database changed"
    if target.read and status == 200:
        if target.empty_when_ok:
            assert _matched_nothing(response, target), f"a hostile filter matched rows: {text}"
        return
    assert 400 <= status < 500, f"{status} for a hostile value: {text}"
    if value.unparsable and _malformed(response, target):
        return
    assert status in (400, 422), f"{status}: {text}"
    assert _names(response, target), f"the error does not name {target.field}: {text}"


@pytest.mark.parametrize("case", cases("3scale"), ids=case_id)
def test_threescale_parameter(case, world, hostile):
    target, value = case
    before = fingerprint()
    response = _send(hostile, world, target, value)
    _check(response, target, value, before)


@pytest.mark.parametrize("case", cases("v1"), ids=case_id)
def test_v1_parameter(case, world, hostile):
    target, value = case
    before = fingerprint()
    response = _send(hostile, world, target, value)
    _check(response, target, value, before)
