"""The usage report of pre-rated records against a hand-computed fixture."""

from __future__ import annotations

import orjson
import pytest

from tests.support.usage import client_for, record
from usage.services import usage_ingest

URL = "/v1/usage/report"
SEED_REQUEST = {
    "start_date": "2022-01-01",
    "end_date": "2022-01-31",
    "filters": {"region": "us-west-1", "service": "EC2"},
}


def _at(day: str, time: str = "00:00:00") -> str:
    return f"2022-{day}T{time}Z"


@pytest.fixture
def usage(owner, other):
    """Owner: four records in January 2022 (one on the last second) and one in February.
    Other account: one January record that the owner must never see."""
    rows = [
        record(id="r1", resource_id="i-1", service="EC2", region="us-west-1",
               start_time=_at("01-01"), end_time=_at("01-01", "01:00:00"), cost="0.50"),
        record(id="r2", resource_id="db-1", resource_name="db-server-1", service="RDS",
               region="us-west-1", start_time=_at("01-01"), end_time=_at("01-01", "01:00:00"),
               cost="1.00"),
        record(id="r3", resource_id="i-2", service="EC2", region="us-east-1",
               start_time=_at("01-15", "12:00:00"), end_time=_at("01-15", "12:30:00"),
               cost="0.25"),
        record(id="r4", resource_id="i-1", service="EC2", region="us-west-1",
               start_time=_at("01-31", "23:59:00"), end_time=_at("02-01", "00:00:00"),
               cost="0.10"),
        record(id="r5", resource_id="i-1", service="EC2", region="us-west-1",
               start_time=_at("02-01"), end_time=_at("02-01", "01:00:00"), cost="9"),
    ]  # fmt: skip
    usage_ingest(records=rows, account_id=owner.account.pk)
    usage_ingest(
        records=[record(id="o1", start_time=_at("01-10"), end_time=_at("01-10", "01:00:00"),
                        cost="100")],
        account_id=other.account.pk,
    )  # fmt: skip


def report(client, body=None, method="post", query=""):
    if method == "get":
        return client.get(f"{URL}{query}")
    return client.generic(
        "POST", f"{URL}{query}", orjson.dumps(body), content_type="application/json"
    )


@pytest.mark.django_db
@pytest.mark.usefixtures("usage")
class TestReport:
    def test_seed_request_gives_the_seed_response(self, owner):
        response = report(client_for(owner.secret), SEED_REQUEST)
        assert response.status_code == 200, response.content
        body = response.json()
        assert {k: body[k] for k in ("start_date", "end_date", "filters")} == SEED_REQUEST
        assert [row["id"] for row in body["usage"]] == ["r1", "r4"]
        assert body["usage"][0] == {
            "id": "r1",
            "account_id": owner.account.pk,
            "resource_id": "i-1",
            "resource_name": "web-server-1",
            "service": "EC2",
            "region": "us-west-1",
            "start_time": "2022-01-01T00:00:00Z",
            "end_time": "2022-01-01T01:00:00Z",
            "duration": 3600,
            "cost": 0.5,
        }
        # Exact numbers from Decimal, as in the seed: no float drift, two places at least.
        assert b'"cost":0.50' in response.content
        assert b'"total_cost":0.60' in response.content

    def test_inclusive_end_date_and_no_filters(self, owner):
        body = report(
            client_for(owner.secret), {"start_date": "2022-01-01", "end_date": "2022-01-31"}
        ).json()
        assert [row["id"] for row in body["usage"]] == ["r1", "r2", "r3", "r4"]
        assert body["filters"] == {}
        assert body["total_cost"] == 1.85
        body = report(
            client_for(owner.secret), {"start_date": "2022-01-01", "end_date": "2022-01-30"}
        ).json()
        assert body["total_cost"] == 1.75  # r4 starts on the 31st

    def test_group_by_service(self, owner):
        body = report(
            client_for(owner.secret),
            {"start_date": "2022-01-01", "end_date": "2022-01-31", "group_by": "service"},
        ).json()
        assert body["usage"] == [
            {"service": "EC2", "records": 3, "duration": 3600 + 1800 + 60, "cost": 0.85},
            {"service": "RDS", "records": 1, "duration": 3600, "cost": 1.0},
        ]
        assert body["total_cost"] == 1.85

    def test_group_by_day_region_and_resource(self, owner):
        client = client_for(owner.secret)
        base = {"start_date": "2022-01-01", "end_date": "2022-01-31"}
        days = report(client, {**base, "group_by": "day"}).json()["usage"]
        assert [(r["day"], r["records"], r["cost"]) for r in days] == [
            ("2022-01-01", 2, 1.5), ("2022-01-15", 1, 0.25), ("2022-01-31", 1, 0.1)
        ]  # fmt: skip
        regions = report(client, {**base, "group_by": "region"}).json()["usage"]
        assert [(r["region"], r["cost"]) for r in regions] == [
            ("us-east-1", 0.25),
            ("us-west-1", 1.6),
        ]
        resources = report(
            client, {**base, "group_by": "resource", "filters": {"service": "EC2"}}
        ).json()
        assert [(r["resource_id"], r["records"]) for r in resources["usage"]] == [
            ("i-1", 2),
            ("i-2", 1),
        ]
        assert resources["total_cost"] == 0.85

    def test_pagination_keeps_the_whole_range_total(self, owner):
        client = client_for(owner.secret)
        body = {"start_date": "2022-01-01", "end_date": "2022-01-31"}
        response = report(client, body, query="?page=2&per_page=3")
        assert response["X-Total-Count"] == "4"
        assert [row["id"] for row in response.json()["usage"]] == ["r4"]
        assert response.json()["total_cost"] == 1.85
        assert 'rel="prev"' in response["Link"] and 'rel="next"' not in response["Link"]
        beyond = report(client, {**body, "page": 10**9, "per_page": 1000})
        assert beyond.status_code == 200 and beyond.json()["usage"] == []
        assert beyond.json()["total_cost"] == 1.85
        assert report(client, {**body, "page": 2**62}).status_code == 400
        first = report(client, {**body, "per_page": 3})
        assert 'rel="next"' in first["Link"] and "page=2" in first["Link"]

    def test_get_with_query_parameters(self, owner):
        client = client_for(owner.secret)
        query = "?start_date=2022-01-01&end_date=2022-01-31&filters.region=us-west-1&filters.service=EC2"
        body = report(client, method="get", query=query).json()
        assert body["filters"] == SEED_REQUEST["filters"]
        assert body["total_cost"] == 0.6
        short = report(
            client,
            method="get",
            query="?start_date=2022-01-01&end_date=2022-01-31&region=us-east-1",
        ).json()
        assert [row["id"] for row in short["usage"]] == ["r3"]
        by_resource = report(
            client,
            method="get",
            query="?start_date=2022-01-01&end_date=2022-01-31&resource_id=db-1",
        ).json()
        assert by_resource["total_cost"] == 1.0

    def test_provider_wide_key_sees_all_or_one_account(self, other, admin_key):
        client = client_for(admin_key[1])
        body = {"start_date": "2022-01-01", "end_date": "2022-01-31"}
        assert report(client, body).json()["total_cost"] == 101.85
        one = report(client, {**body, "account_id": other.account.pk}).json()
        assert one["total_cost"] == 100 and one["account_id"] == other.account.pk
        assert report(client, {**body, "account_id": 987654}).status_code == 404

    def test_limited_key_never_sees_another_account(self, owner, other):
        body = {"start_date": "2022-01-01", "end_date": "2022-01-31"}
        theirs = report(client_for(other.secret), body).json()
        assert [row["id"] for row in theirs["usage"]] == ["o1"]
        assert (
            report(client_for(other.secret), {**body, "account_id": owner.account.pk}).status_code
            == 404
        )

    def test_read_key_may_post_a_report(self, read_key):
        response = report(client_for(read_key[1]), SEED_REQUEST)
        assert response.status_code == 200
        assert response.json()["total_cost"] == 100.6  # provider-wide: both accounts


@pytest.mark.django_db
class TestReportErrors:
    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"start_date": "2022-02-01", "end_date": "2022-01-31"}, "end_date"),
            ({"start_date": "2022-01-01", "end_date": "2023-01-02"}, "end_date"),
            ({"start_date": "2022-02-30", "end_date": "2022-03-01"}, "start_date"),
            ({"end_date": "2022-03-01"}, "start_date"),
            ({"start_date": "2022-01-01", "end_date": "01/31/2022"}, "end_date"),
            (
                {"start_date": "2022-01-01", "end_date": "2022-01-31", "group_by": "week"},
                "group_by",
            ),
            ({"start_date": "2022-01-01", "end_date": "2022-01-31", "filters": "EC2"}, "filters"),
            (
                {"start_date": "2022-01-01", "end_date": "2022-01-31", "filters": {"region": 5}},
                "region",
            ),
            (
                {"start_date": "2022-01-01", "end_date": "2022-01-31", "account_id": "x"},
                "account_id",
            ),
            ({"start_date": "2022-01-01", "end_date": "2022-01-31", "per_page": 1001}, "per_page"),
        ],
    )
    def test_bad_requests_name_the_field(self, owner, body, field):
        response = report(client_for(owner.secret), body)
        assert response.status_code == 400, response.content
        error = response.json()["error"]
        assert error["code"] == "validation_error"
        assert field in error["details"]

    def test_a_whole_year_is_allowed(self, owner):
        body = {"start_date": "2024-01-01", "end_date": "2024-12-31"}  # 366 days
        assert report(client_for(owner.secret), body).status_code == 200

    def test_get_errors(self, owner):
        response = report(
            client_for(owner.secret),
            method="get",
            query="?start_date=2022-01-01&end_date=2022-01-31&page=0",
        )
        assert response.status_code == 400
        assert "page" in response.json()["error"]["details"]

    def test_auth(self):
        assert report(client_for(None), SEED_REQUEST).status_code == 401
        assert report(client_for("nonsense"), SEED_REQUEST, method="get").status_code == 401
