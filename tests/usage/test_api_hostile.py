"""Hostile values against the usage API: a 400 naming the field, never a 500, nothing written."""

from __future__ import annotations

import json

import orjson
import pytest

from tests.support.usage import client_for, record
from usage.models import UsageRecord

REPORT = "/v1/usage/report"
INGEST = "/v1/usage"
RANGE = {"start_date": "2022-01-01", "end_date": "2022-01-31"}


def post_json(client, url, payload):
    # The standard library keeps lone surrogates ("\ud800") that orjson refuses to write.
    body = json.dumps(payload) if isinstance(payload, (dict, list)) else payload
    return client.generic("POST", url, body, content_type="application/json")


def assert_names(response, field):
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["details"], error


@pytest.mark.django_db
class TestReportParameters:
    @pytest.mark.parametrize("field", ["page", "per_page", "account_id"])
    @pytest.mark.parametrize("value", ["²", "٣", "１", "1_000", "-1", "0", "1.5", True, [], {}])
    def test_integers_are_ascii_digits_or_json_integers(self, owner, field, value):
        response = post_json(client_for(owner.secret), REPORT, {**RANGE, field: value})
        assert_names(response, field)

    @pytest.mark.parametrize("field", ["page", "per_page", "account_id"])
    def test_integers_in_the_query_string(self, owner, field):
        query = f"?start_date=2022-01-01&end_date=2022-01-31&{field}=%C2%B2"
        assert_names(client_for(owner.secret).get(f"{REPORT}{query}"), field)

    def test_huge_integers(self, owner):
        client = client_for(owner.secret)
        assert_names(post_json(client, REPORT, {**RANGE, "account_id": 2**64}), "account_id")
        assert_names(post_json(client, REPORT, {**RANGE, "page": "9" * 5000}), "page")

    def test_the_last_day_there_is(self, owner):
        body = {"start_date": "9999-12-31", "end_date": "9999-12-31"}
        response = post_json(client_for(owner.secret), REPORT, body)
        assert response.status_code == 200, response.content
        assert response.json()["usage"] == []
        query = "?start_date=9999-12-31&end_date=9999-12-31&group_by=day"
        assert client_for(owner.secret).get(f"{REPORT}{query}").status_code == 200

    @pytest.mark.parametrize(
        "value", ["0000-01-01", "２０２２-01-01", "20220101", "2022-1-01", 20220101, None, ""]
    )
    def test_bad_dates(self, owner, value):
        response = post_json(
            client_for(owner.secret), REPORT, {"start_date": value, "end_date": "2022-01-31"}
        )
        assert_names(response, "start_date")

    @pytest.mark.parametrize("value", [["service"], {"service": 1}, "week", 1])
    def test_group_by_is_one_key(self, owner, value):
        response = post_json(client_for(owner.secret), REPORT, {**RANGE, "group_by": value})
        assert_names(response, "group_by")

    @pytest.mark.parametrize("field", ["region", "service"])
    @pytest.mark.parametrize("value", ["\ud800", "a\udfffb", "eu\x00west", "x" * 256, 5, ["a"]])
    def test_text_filters(self, owner, field, value):
        response = post_json(client_for(owner.secret), REPORT, {**RANGE, "filters": {field: value}})
        # Text the body reader refuses (NUL, surrogates) is named by its JSON path.
        named = f"filters.{field}" if isinstance(value, str) and len(value) < 256 else field
        assert_names(response, named)

    @pytest.mark.parametrize("value", ["\ud800", "i\x00", -1, 2**64])
    def test_resource_id(self, owner, value):
        response = post_json(client_for(owner.secret), REPORT, {**RANGE, "resource_id": value})
        assert_names(response, "resource_id")

    def test_nul_in_the_query_string(self, owner):
        query = "?start_date=2022-01-01&end_date=2022-01-31&filters.region=a%00b"
        assert_names(client_for(owner.secret).get(f"{REPORT}{query}"), "region")


GOOD = record(id="g1", account_id=None)
FIELDS = ["id", "account_id", "resource_id", "resource_name", "service", "region",
          "start_time", "end_time", "duration", "cost"]  # fmt: skip
TEXT_FIELDS = ["id", "resource_id", "resource_name", "service", "region"]
HOSTILE_TEXT = ["\ud800", "a\udc00", "x\x00y"]
HOSTILE_NUMBERS = ["²", "٣", "１２", "1_000", "9" * 5000, 2**64, -(2**64), "1e999999"]
HOSTILE_TIMES = ["0000-01-01T00:00:00Z", "9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+05:00",
                 "２０２２-01-01T00:00:00Z", "\ud800", "2022-01-01T00:00:00\x00Z"]  # fmt: skip


def hostile_records():
    value: object
    for name in TEXT_FIELDS:
        for value in HOSTILE_TEXT:
            yield name, value
    for name in ("account_id", "duration", "cost"):
        for value in HOSTILE_NUMBERS:
            yield name, value
    for name in ("start_time", "end_time"):
        for value in HOSTILE_TIMES:
            yield name, value


@pytest.mark.django_db
class TestIngestRecords:
    @pytest.mark.parametrize(("field", "value"), list(hostile_records()))
    def test_every_field_refuses_hostile_values(self, owner, field, value):
        # given a batch whose second record carries one hostile value
        client = client_for(owner.secret)
        bad = {**record(id="bad"), field: value}
        # when it is posted as a JSON array
        response = post_json(client, INGEST, [record(id="fine"), bad])
        # then: 400 naming the record and the field, and nothing is stored
        assert response.status_code == 400, response.content
        problems = response.json()["error"]["details"]["records"]
        assert {"index": 1, "field": field} in [
            {"index": p["index"], "field": p["field"]} for p in problems
        ], problems
        assert all("int()" not in p["message"] and "sys." not in p["message"] for p in problems)
        assert UsageRecord.objects.count() == 0

    def test_a_lone_surrogate_in_json_lines_names_the_line_and_field(self, owner):
        lines = orjson.dumps(record()) + b"\n" + json.dumps(record(service="\ud800")).encode()
        # The test client sends bytes as they are; the stubs only list str.
        response = client_for(owner.secret).generic(
            "POST",
            INGEST,
            lines,  # type: ignore[arg-type]
            content_type="application/x-ndjson",
        )
        assert response.status_code == 400, response.content
        assert response.json()["error"]["details"]["records"][0]["field"] == "service"
        assert UsageRecord.objects.count() == 0

    def test_a_surrogate_encoded_as_utf8_bytes_names_the_field(self, owner):
        body = orjson.dumps(record())[:-1] + b', "region": "\xed\xa0\x80"}'
        # The test client sends bytes as they are; the stubs only list str.
        response = client_for(owner.secret).generic(
            "POST",
            INGEST,
            body,  # type: ignore[arg-type]
            content_type="application/json",
        )
        assert response.status_code == 400, response.content
        assert response.json()["error"]["details"]["records"][0]["field"] == "region"
        assert UsageRecord.objects.count() == 0

    def test_bytes_that_are_not_utf8_are_a_malformed_body(self, owner):
        # The test client sends bytes as they are; the stubs only list str.
        response = client_for(owner.secret).generic(
            "POST",
            INGEST,
            b'{"id": "\xff\xfe"}',  # type: ignore[arg-type]
            content_type="application/json",
        )
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "malformed_request"

    def test_the_last_second_there_is_is_stored(self, owner):
        response = post_json(
            client_for(owner.secret),
            INGEST,
            record(start_time="9999-12-31T23:00:00Z", end_time="9999-12-31T23:59:59Z"),
        )
        assert response.status_code == 201, response.content
