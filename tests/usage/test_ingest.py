"""POST /v1/usage: validation, de-duplication, all-or-nothing batches, auth."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import orjson
import pytest

from invoices.models import Invoice
from tests.factories import make_invoice
from tests.support.usage import client_for, record
from usage.models import UsageRecord
from usage.services import usage_ingest

URL = "/v1/usage"


def post(client, payload, content_type="application/json", **extra):
    body = payload if isinstance(payload, (bytes, str)) else orjson.dumps(payload)
    return client.generic("POST", URL, body, content_type=content_type, **extra)


@pytest.mark.django_db
class TestIngest:
    def test_single_record_is_stored_with_exact_values(self, owner, owner_client):
        response = post(owner_client, record(id="a1", cost="0.123456"))
        assert response.status_code == 201, response.content
        assert response.json() == {"received": 1, "stored": 1, "duplicates": 0}
        stored = UsageRecord.objects.get()
        assert stored.account_id == owner.account.pk  # implied by the limited key
        assert stored.client_id == "a1"
        assert stored.cost == Decimal("0.123456")
        assert stored.duration == 3600  # end minus start
        assert stored.start_time == dt.datetime(2022, 1, 1, tzinfo=dt.UTC)

    def test_array_with_duplicates_within_the_batch_and_across_batches(self, owner_client):
        batch = [record(id="x"), record(id="y"), record(id="x")]
        first = post(owner_client, batch)
        assert first.status_code == 201
        assert first.json() == {"received": 3, "stored": 2, "duplicates": 1}
        again = post(owner_client, [record(id="y"), record(id="z")])
        assert again.json() == {"received": 2, "stored": 1, "duplicates": 1}
        replay = post(owner_client, [record(id="x"), record(id="z")])
        assert replay.status_code == 200  # everything was a duplicate
        assert replay.json() == {"received": 2, "stored": 0, "duplicates": 2}
        assert UsageRecord.objects.count() == 3

    def test_same_id_in_two_accounts_is_two_records(self, owner, other):
        post(client_for(owner.secret), record(id="same"))
        response = post(client_for(other.secret), record(id="same"))
        assert response.json()["stored"] == 1
        assert UsageRecord.objects.filter(client_id="same").count() == 2

    @pytest.mark.parametrize("content_type", ["application/x-ndjson", "application/jsonl"])
    def test_json_lines(self, owner_client, content_type):
        lines = b"\n".join(orjson.dumps(record()) for _ in range(3)) + b"\n\n"
        response = post(owner_client, lines, content_type=content_type)
        assert response.status_code == 201
        assert response.json()["stored"] == 3

    def test_bad_json_line_names_the_line(self, owner_client):
        body = orjson.dumps(record()) + b"\n{not json\n"
        response = post(owner_client, body, content_type="application/x-ndjson")
        assert response.status_code == 400
        assert "Line 2" in response.json()["error"]["message"]

    def test_a_bad_record_writes_nothing_and_every_error_is_reported(self, owner_client):
        batch = [
            record(),
            record(cost="-1"),
            record(start_time="2022-01-01T00:00:00"),  # no time zone
            record(end_time="2021-12-31T00:00:00Z", cost="abc"),
            record(id=None),
            "not an object",
        ]
        response = post(owner_client, batch)
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "validation_error"
        found = {(e["index"], e["field"]) for e in error["details"]["records"]}
        assert found == {
            (1, "cost"),
            (2, "start_time"),
            (3, "end_time"),
            (3, "cost"),
            (4, "id"),
            (5, "record"),
        }
        assert UsageRecord.objects.count() == 0

    @pytest.mark.parametrize(
        ("overrides", "field"),
        [
            ({"cost": "0.1234567"}, "cost"),  # more places than stored
            ({"cost": 0.12345678901234567}, "cost"),  # float beyond exact digits
            ({"cost": True}, "cost"),
            ({"cost": None}, "cost"),
            ({"duration": -5}, "duration"),
            ({"duration": "1h"}, "duration"),
            ({"service": ""}, "service"),
            ({"region": "x" * 65}, "region"),
            ({"resource_id": "a\x00b"}, "resource_id"),
            ({"start_time": "2022-02-30T00:00:00Z"}, "start_time"),
            ({"end_time": 12}, "end_time"),
            ({"start_time": "0001-01-01T00:00:00+01:00"}, "start_time"),
            ({"account_id": 2**63}, "account_id"),
            ({"account_id": -3}, "account_id"),
        ],
    )
    def test_field_errors(self, owner_client, overrides, field):
        response = post(owner_client, [record(), record(**overrides)])
        assert response.status_code == 400
        (error,) = response.json()["error"]["details"]["records"]
        assert (error["index"], error["field"]) == (1, field)
        assert error["message"]
        assert UsageRecord.objects.count() == 0

    def test_float_cost_is_exact(self, owner_client):
        response = post(owner_client, b'[{"id":"f","resource_id":"r","service":"S","region":"R",'
                        b'"start_time":"2022-01-01T00:00:00+02:00","end_time":"2022-01-01T00:30:00+02:00",'
                        b'"cost":0.1}]')  # fmt: skip
        assert response.status_code == 201, response.content
        stored = UsageRecord.objects.get()
        assert stored.cost == Decimal("0.1")
        assert stored.duration == 1800
        assert stored.start_time == dt.datetime(2021, 12, 31, 22, tzinfo=dt.UTC)

    def test_explicit_duration_wins(self, owner_client):
        post(owner_client, record(duration=42))
        assert UsageRecord.objects.get().duration == 42

    def test_batch_limit(self, owner_client, settings):
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 50 * 1024 * 1024
        batch = [{"id": str(n)} for n in range(10_001)]
        response = post(owner_client, batch)
        assert response.status_code == 413
        assert "10000" in response.json()["error"]["message"]

    def test_body_size_limit(self, owner_client, settings):
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
        response = post(owner_client, [record() for _ in range(20)])
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "payload_too_large"

    def test_empty_batch(self, owner_client):
        response = post(owner_client, [])
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "validation_error"

    def test_malformed_json(self, owner_client):
        response = post(owner_client, b"[{")
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "malformed_request"

    def test_unsupported_media_type(self, owner_client):
        response = post(owner_client, "id=1", content_type="text/plain")
        assert response.status_code == 415

    def test_month_already_issued_is_refused(self, owner, owner_client):
        invoice = make_invoice(account=owner.account, period=dt.date(2022, 1, 1), state="pending")
        Invoice.objects.filter(pk=invoice.pk).update(creation_type="background")
        response = post(owner_client, [record(id="late"), record(start_time="2022-02-01T00:00:00Z",
                                                                  end_time="2022-02-01T01:00:00Z")])  # fmt: skip
        assert response.status_code == 400
        (error,) = response.json()["error"]["details"]["records"]
        assert error["index"] == 0 and error["field"] == "start_time"
        assert "late" in error["message"] and invoice.friendly_id in error["message"]
        assert UsageRecord.objects.count() == 0

    def test_month_with_open_background_invoice_still_accepts_usage(self, owner, owner_client):
        invoice = make_invoice(account=owner.account, period=dt.date(2022, 1, 1), state="finalized")
        Invoice.objects.filter(pk=invoice.pk).update(creation_type="background")
        assert post(owner_client, record()).status_code == 201


@pytest.mark.django_db
class TestAccounts:
    def test_provider_wide_key_must_name_the_account(self, owner, admin_key):
        client = client_for(admin_key[1])
        response = post(client, [record(), record(account_id=owner.account.pk)])
        assert response.status_code == 400
        assert response.json()["error"]["details"]["records"][0]["field"] == "account_id"
        response = post(client, [record(account_id=owner.account.pk)])
        assert response.status_code == 201

    def test_unknown_account(self, admin_key):
        response = post(client_for(admin_key[1]), [record(account_id=999999)])
        assert response.status_code == 400
        assert "999999" in response.json()["error"]["details"]["records"][0]["message"]

    def test_limited_key_cannot_write_to_another_account(self, owner, other):
        response = post(client_for(owner.secret), [record(account_id=other.account.pk)])
        assert response.status_code == 400
        error = response.json()["error"]["details"]["records"][0]
        assert error["field"] == "account_id"
        assert UsageRecord.objects.count() == 0


@pytest.mark.django_db
class TestAuth:
    def test_no_key(self):
        response = post(client_for(None), record())
        assert response.status_code == 401
        assert response["WWW-Authenticate"].startswith("Bearer")

    def test_bad_key(self):
        response = post(client_for("bk_00000000_" + "x" * 43), record())
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthenticated"

    def test_read_key_cannot_ingest(self, read_key):
        response = post(client_for(read_key[1]), record(account_id=1))
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "forbidden"


@pytest.mark.django_db
class TestIdempotency:
    def test_replay_returns_the_first_answer(self, owner_client):
        batch = [record(id="i1"), record(id="i2")]
        first = post(owner_client, batch, HTTP_IDEMPOTENCY_KEY="k-1")
        second = post(owner_client, batch, HTTP_IDEMPOTENCY_KEY="k-1")
        assert first.status_code == second.status_code == 201
        assert json.loads(second.content) == {"received": 2, "stored": 2, "duplicates": 0}
        assert second["Idempotent-Replayed"] == "true"
        other_body = post(owner_client, [record(id="i3")], HTTP_IDEMPOTENCY_KEY="k-1")
        assert other_body.status_code == 422
        assert UsageRecord.objects.count() == 2


@pytest.mark.django_db
class TestService:
    def test_dry_run_counts_without_storing(self, owner):
        usage_ingest(records=[record(id="d1")], account_id=owner.account.pk)
        result = usage_ingest(
            records=[record(id="d1"), record(id="d2"), record(id="d2")],
            account_id=owner.account.pk,
            dry_run=True,
        )
        assert (result.received, result.stored, result.duplicates) == (3, 1, 2)
        assert UsageRecord.objects.count() == 1

    def test_several_batches_in_one_transaction(self, owner):
        # The staging table must not carry rows from one batch into the next.
        first = usage_ingest(records=[record(id="t1")], account_id=owner.account.pk)
        second = usage_ingest(records=[record(id="t2")], account_id=owner.account.pk)
        assert (first.stored, second.stored) == (1, 1)
        assert UsageRecord.objects.count() == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_overlapping_batches_store_each_record_once(owner):
    import threading

    from django.db import connection as main_connection
    from django.db import connections

    # given: two clients delivering overlapping batches at the same time
    batches = [
        [record(id=f"c{n}") for n in range(0, 3000)],
        [record(id=f"c{n}") for n in range(1500, 4500)],
    ]
    results = []
    barrier = threading.Barrier(2)

    def deliver(batch):
        try:
            barrier.wait(timeout=10)
            results.append(usage_ingest(records=batch, account_id=owner.account.pk))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=deliver, args=(batch,)) for batch in batches]
    # when
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # then: the unique constraint decided; nothing doubled, nothing dropped
    assert len(results) == 2
    assert sum(r.stored for r in results) == 4500
    assert sum(r.duplicates for r in results) == 1500
    assert UsageRecord.objects.count() == 4500
    assert main_connection.vendor == "postgresql"
