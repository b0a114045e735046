"""The ingestion body reader: orjson where it reads exactly what was sent, the API's
own reader where it would not (numbers with an exponent, lone surrogates)."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from tests.support.usage import record
from usage.api.v1 import parsers


def _records(body: bytes) -> list[dict]:
    document = parsers._loads(body)
    assert isinstance(document, list)
    return document


def _body(**overrides) -> bytes:
    # Hex resource ids put a digit before an "e" in strings, as real ids do.
    return b"[" + orjson.dumps(record(resource_id="i-00003e5f", **overrides)) + b"]"


class TestLoads:
    def test_hex_ids_with_string_numbers_are_read_by_orjson(self, monkeypatch):
        calls = []
        monkeypatch.setattr(parsers, "read_json", lambda *a, **k: calls.append(a))
        body = _body(cost="0.25")
        assert parsers._loads(body) == orjson.loads(body)
        assert calls == []

    @pytest.mark.parametrize("number", [b"1e-400", b"2.5E-3", b"-1e5", b"1e400"])
    def test_a_number_with_an_exponent_is_read_exactly(self, number):
        body = _body(cost="X").replace(b'"X"', number)
        (parsed,) = _records(body)
        assert parsed["cost"] == Decimal(number.decode())
        assert parsed["resource_id"] == "i-00003e5f"

    def test_a_plain_float_beside_hex_ids_keeps_its_value(self):
        body = _body(cost="X").replace(b'"X"', b"0.5")
        (parsed,) = _records(body)
        assert parsed["cost"] == Decimal("0.5")

    def test_a_lone_surrogate_is_kept_for_the_validator(self):
        body = _body(cost="0.25").replace(b'"EC2"', b'"\\ud800"')
        (parsed,) = _records(body)
        assert parsed["service"] == "\ud800"

    @pytest.mark.parametrize("body", [b"[{", b'[{"id": "3e"', b"1e"])
    def test_broken_json_is_refused(self, body):
        with pytest.raises(ValueError):
            parsers._loads(body)


@pytest.mark.django_db
@pytest.mark.parametrize("number", [b"1e-400", b"1e400"])
def test_an_exponent_cost_beside_hex_ids_is_a_400_naming_the_field(owner_client, number):
    body = _body(cost="X").replace(b'"X"', number)
    response = owner_client.post("/v1/usage", body, content_type="application/json")
    assert response.status_code == 400
    (error,) = response.json()["error"]["details"]["records"]
    assert (error["index"], error["field"]) == (0, "cost")
