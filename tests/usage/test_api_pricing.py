"""/v1 metrics, plans, subscriptions, metered ingestion and the upcoming invoice."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
import time_machine

from tests.support.pricing import api_calls, metered, scale_plan
from tests.support.usage import client_for
from usage.models import Charge, Metric, Plan, Subscription, UsageRecord
from usage.subscriptions import subscription_create

pytestmark = pytest.mark.django_db
D = Decimal

PLAN_BODY = {
    "code": "scale",
    "name": "Scale",
    "currency": "USD",
    "amount": 100.00,
    "setup_fee": "0",
    "trial_days": 0,
    "charges": [
        {
            "metric": "api_calls",
            "model": "graduated",
            "tiers": [
                {"up_to": 1000, "unit_amount": 0},
                {"up_to": 10000, "unit_amount": "0.01"},
                {"up_to": None, "unit_amount": 0.005, "flat_amount": 0},
            ],
        }
    ],
}


def post(client, url, body, **headers):
    return client.post(url, json.dumps(body), content_type="application/json", **headers)


@pytest.fixture
def provider(admin_key):
    return client_for(admin_key[1])


def test_metrics_create_list_read(provider, read_key):
    response = post(
        provider,
        "/v1/metrics",
        {"code": "api_calls", "name": "API calls", "unit": "calls", "aggregation": "sum"},
    )
    assert response.status_code == 201, response.content
    assert response.json()["code"] == "api_calls"
    reader = client_for(read_key[1])
    assert [m["code"] for m in reader.get("/v1/metrics").json()] == ["api_calls"]
    assert reader.get("/v1/metrics/api_calls").json()["aggregation"] == "sum"
    assert reader.get("/v1/metrics/nope").status_code == 404
    again = post(provider, "/v1/metrics", {"code": "api_calls", "name": "Again"})
    assert again.status_code == 400
    assert "code" in again.json()["error"]["details"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"code": "Bad Code", "name": "x"}, "code"),
        ({"code": "ok", "name": "x", "aggregation": "avg"}, "aggregation"),
        ({"code": "ok"}, "name"),
        ({"code": "ok", "name": "x", "colour": "red"}, "colour"),
        ({"code": 5, "name": "x"}, "code"),
    ],
)
def test_bad_metrics_are_refused_naming_the_field(provider, body, field):
    response = post(provider, "/v1/metrics", body)
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["details"]
    assert not Metric.objects.exists()


def test_only_a_provider_wide_write_key_changes_the_catalogue(owner, read_key):
    body = {"code": "api_calls", "name": "API calls"}
    assert post(client_for(owner.secret), "/v1/metrics", body).status_code == 403
    assert post(client_for(read_key[1]), "/v1/metrics", body).status_code == 403
    assert post(client_for(None), "/v1/metrics", body).status_code == 401


def test_plan_with_graduated_charge_round_trips(provider):
    api_calls()
    response = post(provider, "/v1/plans", PLAN_BODY)
    assert response.status_code == 201, response.content
    plan = response.json()
    assert plan["amount"] == 100.0
    assert plan["charges"] == [
        {
            "metric": "api_calls",
            "model": "graduated",
            "unit_amount": 0.0,
            "free_units": 0,
            "package_size": None,
            "tiers": [
                {"up_to": 1000, "unit_amount": 0.0, "flat_amount": 0.0},
                {"up_to": 10000, "unit_amount": 0.01, "flat_amount": 0.0},
                {"up_to": None, "unit_amount": 0.005, "flat_amount": 0.0},
            ],
        }
    ]
    assert provider.get("/v1/plans/scale").json()["id"] == plan["id"]
    assert [p["code"] for p in provider.get("/v1/plans").json()] == ["scale"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount": -1}, "amount"),
        ({"amount": "1.001"}, "amount"),
        ({"amount": "NaN"}, "amount"),
        ({"amount": True}, "amount"),
        ({"currency": "XXX"}, "currency"),
        ({"trial_days": -1}, "trial_days"),
        ({"trial_days": 1.5}, "trial_days"),
        ({"charges": [{"metric": "nope", "model": "per_unit", "unit_amount": 1}]},
         "charges[0].metric"),
        ({"charges": [{"metric": "api_calls", "model": "flat"}]}, "charges[0].model"),
        ({"charges": [{"metric": "api_calls", "model": "per_unit", "unit_amount": "0.123456789"}]},
         "charges[0].unit_amount"),
        ({"charges": [{"metric": "api_calls", "model": "package", "unit_amount": 1,
                       "package_size": 0}]}, "charges[0].package_size"),
        ({"charges": [{"metric": "api_calls", "model": "graduated",
                       "tiers": [{"up_to": 10, "unit_amount": 1}, {"up_to": 5, "unit_amount": 1},
                                 {"up_to": None, "unit_amount": 1}]}]},
         "charges[0].tiers[1].up_to"),
        ({"charges": [{"metric": "api_calls", "model": "volume",
                       "tiers": [{"up_to": None, "unit_amount": -1}]}]},
         "charges[0].tiers[0].unit_amount"),
        ({"charges": [{"metric": "api_calls", "model": "volume", "tiers": "cheap"}]},
         "charges[0].tiers"),
        ({"charges": [{"metric": "api_calls", "model": "per_unit", "unit_amount": 1},
                      {"metric": "api_calls", "model": "per_unit", "unit_amount": 2}]},
         "charges[1].metric"),
        ({"charges": {"metric": "api_calls"}}, "charges"),
    ],
)  # fmt: skip
def test_hostile_plans_are_refused_naming_the_field_and_nothing_is_written(provider, change, field):
    api_calls()
    response = post(provider, "/v1/plans", {**PLAN_BODY, **change})
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["details"], response.json()
    assert not Plan.objects.exists()
    assert not Charge.objects.exists()


def test_a_plan_in_use_cannot_change_409(provider, owner):
    api_calls()
    post(provider, "/v1/plans", PLAN_BODY)
    patch = provider.patch(
        "/v1/plans/scale", json.dumps({"amount": 120}), content_type="application/json"
    )
    assert patch.status_code == 200, patch.content
    assert patch.json()["amount"] == 120.0
    subscription_create(
        account=owner.account, plan=Plan.objects.get(code="scale"), start_date=dt.date(2026, 1, 1)
    )
    refused = provider.patch(
        "/v1/plans/scale", json.dumps({"amount": 1}), content_type="application/json"
    )
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "plan_in_use"
    assert provider.delete("/v1/plans/scale").status_code == 409
    assert Plan.objects.get(code="scale").amount == D("120")


def test_subscriptions_create_change_cancel_and_visibility(owner, other):
    scale_plan()
    scale_plan("big", name="Big", amount=D("200.00"))
    client = client_for(owner.secret)
    created = post(
        client,
        "/v1/subscriptions",
        {"customer_id": owner.account.pk, "plan": "scale", "start_date": "2026-11-11"},
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["plan"], body["start_date"], body["end_date"]) == ("scale", "2026-11-11", None)
    sub_id = body["id"]

    # the other account neither sees nor changes it
    other_client = client_for(other.secret)
    assert other_client.get(f"/v1/subscriptions/{sub_id}").status_code == 404
    assert other_client.get("/v1/subscriptions").json() == []
    assert post(other_client, f"/v1/subscriptions/{sub_id}/cancel", {"date": "2026-12-01"}).status_code == 404  # fmt: skip
    assert post(
        other_client,
        "/v1/subscriptions",
        {"customer_id": owner.account.pk, "plan": "scale", "start_date": "2026-11-11"},
    ).json()["error"]["details"] == {"customer_id": ["does not exist"]}

    # a second live subscription is a conflict
    clash = post(
        client,
        "/v1/subscriptions",
        {"customer_id": owner.account.pk, "plan": "big", "start_date": "2027-01-01"},
    )
    assert clash.status_code == 409

    changed = post(
        client, f"/v1/subscriptions/{sub_id}/change_plan", {"plan": "big", "date": "2026-12-01"}
    )
    assert changed.status_code == 201, changed.content
    new = changed.json()
    assert (new["plan"], new["start_date"]) == ("big", "2026-12-01")
    assert client.get(f"/v1/subscriptions/{sub_id}").json()["end_date"] == "2026-11-30"

    cancelled = post(client, f"/v1/subscriptions/{new['id']}/cancel", {"date": "2027-01-15"})
    assert cancelled.status_code == 200, cancelled.content
    assert cancelled.json()["end_date"] == "2027-01-14"
    listed = client.get("/v1/subscriptions", {"customer_id": owner.account.pk})
    assert [s["plan"] for s in listed.json()] == ["big", "scale"]


_DROP = object()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"customer_id": _DROP}, "customer_id"),
        ({"customer_id": "1"}, "customer_id"),
        ({"customer_id": 10**30}, "customer_id"),
        ({"customer_id": None}, "customer_id"),
        ({"customer_id": 999_999}, "customer_id"),
        ({"plan": "nope"}, "plan"),
        ({"plan": 5}, "plan"),
        ({"plan": ["scale"]}, "plan"),
        ({"start_date": "2026-02-30"}, "start_date"),
        ({"start_date": "01/11/2026"}, "start_date"),
        ({"start_date": _DROP}, "start_date"),
        ({"trial_days": 3}, "trial_days"),
    ],
)
def test_hostile_subscriptions_are_refused_naming_the_field(owner, change, field):
    scale_plan()
    body = {"customer_id": owner.account.pk, "plan": "scale", "start_date": "2026-11-01"}
    body.update(change)
    body = {name: value for name, value in body.items() if value is not _DROP}
    response = post(client_for(owner.secret), "/v1/subscriptions", body)
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["details"]
    assert not Subscription.objects.exists()


def test_change_plan_and_cancel_bodies_are_checked(owner):
    scale_plan()
    subscription = subscription_create(
        account=owner.account, plan=Plan.objects.get(code="scale"), start_date=dt.date(2026, 11, 1)
    )
    client = client_for(owner.secret)
    url = f"/v1/subscriptions/{subscription.pk}"
    for path, body, field in (
        ("change_plan", {"plan": "scale", "date": "2026-11-05"}, "plan"),
        ("change_plan", {"plan": "nope", "date": "2026-11-05"}, "plan"),
        ("change_plan", {"plan": "scale"}, "date"),
        ("cancel", {"date": "2026-11-01"}, "date"),
        ("cancel", {"date": "tomorrow"}, "date"),
        ("cancel", {"date": "2026-12-01", "reason": "x"}, "reason"),
    ):
        response = post(client, f"{url}/{path}", body)
        assert response.status_code == 400, (path, body, response.content)
        assert field in response.json()["error"]["details"], (path, body)
    subscription.refresh_from_db()
    assert subscription.end_date is None


def test_idempotent_replay_of_a_plan_create(provider):
    api_calls()
    first = post(provider, "/v1/plans", PLAN_BODY, HTTP_IDEMPOTENCY_KEY="plan-1")
    second = post(provider, "/v1/plans", PLAN_BODY, HTTP_IDEMPOTENCY_KEY="plan-1")
    assert first.status_code == second.status_code == 201
    assert second["Idempotent-Replayed"] == "true"
    assert Plan.objects.count() == 1


# --- metered usage ---------------------------------------------------------------------


def test_metered_records_are_ingested_beside_pre_rated_ones(owner):
    api_calls()
    client = client_for(owner.secret)
    response = post(
        client,
        "/v1/usage",
        [
            {"id": "m1", "metric": "api_calls", "quantity": 1500, "start_time": "2026-11-12T10:00:00Z"},
            {"id": "m2", "account_id": owner.account.pk, "metric": "api_calls",
             "quantity": "0.5", "start_time": "2026-11-12T11:00:00Z"},
            {"id": "c1", "resource_id": "i-1", "service": "EC2", "region": "us-west-1",
             "start_time": "2026-11-12T10:00:00Z", "end_time": "2026-11-12T11:00:00Z",
             "cost": "0.50"},
        ],
    )  # fmt: skip
    assert response.status_code == 201, response.content
    assert response.json()["stored"] == 3
    m1 = UsageRecord.objects.get(client_id="m1")
    assert (m1.metric, m1.quantity, m1.cost) == ("api_calls", D(1500), None)
    assert UsageRecord.objects.get(client_id="c1").metric is None
    report = client.get(
        "/v1/usage/report", {"start_date": "2026-11-01", "end_date": "2026-11-30"}
    ).json()
    assert report["total_cost"] == 0.5
    assert {row["id"]: row["cost"] for row in report["usage"]} == {
        "m1": None,
        "m2": None,
        "c1": 0.5,
    }


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ({"metric": "nope", "quantity": 1}, "metric"),
        ({"metric": "api_calls"}, "quantity"),
        ({"quantity": 5}, "metric"),
        ({"metric": "api_calls", "quantity": -1}, "quantity"),
        ({"metric": "api_calls", "quantity": "1e400"}, "quantity"),
        ({"metric": "api_calls", "quantity": "0.00001"}, "quantity"),
        ({"metric": "api_calls", "quantity": True}, "quantity"),
        ({"metric": "api_calls", "quantity": "NaN"}, "quantity"),
        ({"metric": "api_calls", "quantity": 1, "cost": "1.00"}, "cost"),
        ({"metric": ["api_calls"], "quantity": 1}, "metric"),
        ({"metric": "api_calls", "quantity": 1, "start_time": "yesterday"}, "start_time"),
    ],
)
def test_hostile_metered_records_are_refused_naming_the_field(owner, record, field):
    api_calls()
    body = {"id": "m1", "start_time": "2026-11-12T10:00:00Z", **record}
    response = post(client_for(owner.secret), "/v1/usage", body)
    assert response.status_code == 400, response.content
    fields = {error["field"] for error in response.json()["error"]["details"]["records"]}
    assert field in fields, response.json()
    assert not UsageRecord.objects.exists()


# --- upcoming invoice -------------------------------------------------------------------


@time_machine.travel("2026-11-20T12:00:00Z", tick=False)
def test_upcoming_invoice_of_the_reference_example(owner, other):
    # given the scale plan from 11 Nov, 12,000 calls and one pre-rated record
    plan = scale_plan()
    subscription_create(account=owner.account, plan=plan, start_date=dt.date(2026, 11, 11))
    metered(owner.account, dt.date(2026, 11, 12), 12000)
    UsageRecord.objects.create(
        account=owner.account,
        client_id="c1",
        resource_id="i-1",
        service="EC2",
        region="us-west-1",
        start_time=dt.datetime(2026, 11, 12, tzinfo=dt.UTC),
        end_time=dt.datetime(2026, 11, 12, 1, tzinfo=dt.UTC),
        duration=3600,
        cost=D("0.50"),
    )
    client = client_for(owner.secret)
    # when
    response = client.get(f"/v1/customers/{owner.account.pk}/upcoming_invoice")
    # then
    assert response.status_code == 200, response.content
    invoice = response.json()
    assert invoice["period"] == "2026-11"
    assert (invoice["id"], invoice["number"], invoice["status"]) == (None, None, "open")
    assert [(line["description"], line["subtotal"]) for line in invoice["line_items"]] == [
        ("Scale plan, 11-30 Nov 2026: 20 of 30 days at 100.00 USD a month", 66.67),
        ("Scale plan, 11-30 Nov 2026: 1,000 calls; 12,000 calls in total", 0.0),
        ("Scale plan, 11-30 Nov 2026: 9,000 calls; 12,000 calls in total", 90.0),
        ("Scale plan, 11-30 Nov 2026: 2,000 calls; 12,000 calls in total", 10.0),
        ("EC2 in us-west-1, November 2026: 1 usage records", 0.5),
    ]
    assert invoice["subtotal"] == invoice["total"] == invoice["amount"] == 167.17
    assert invoice["customer"]["id"] == owner.account.pk
    # nothing was saved
    from invoices.models import Invoice

    assert not Invoice.objects.exists()
    # another month, another account, a bad month
    october = client.get(f"/v1/customers/{owner.account.pk}/upcoming_invoice?month=2026-10")
    assert october.json()["line_items"] == []
    assert client.get(f"/v1/customers/{other.account.pk}/upcoming_invoice").status_code == 404
    assert client.get(f"/v1/customers/{10**30}/upcoming_invoice").status_code == 404
    bad = client.get(f"/v1/customers/{owner.account.pk}/upcoming_invoice?month=2026-13")
    assert bad.status_code == 400
    assert "month" in bad.json()["error"]["details"]


def test_a_csv_import_mixes_metered_and_pre_rated_rows(owner, tmp_path):
    from django.core.management import call_command

    api_calls()
    path = tmp_path / "usage.csv"
    path.write_text(
        "id,account_id,metric,quantity,resource_id,service,region,start_time,end_time,cost\n"
        f"m1,{owner.account.pk},api_calls,250,,,,2026-11-12T10:00:00Z,,\n"
        f"c1,{owner.account.pk},,,i-1,EC2,us-west-1,2026-11-12T10:00:00Z,"
        "2026-11-12T11:00:00Z,0.50\n"
    )
    call_command("import_usage", str(path))
    assert UsageRecord.objects.get(client_id="m1").quantity == D(250)
    assert UsageRecord.objects.get(client_id="c1").cost == D("0.50")


@time_machine.travel("2026-12-05T12:00:00Z", tick=False)
def test_upcoming_invoice_of_pre_rated_usage_equals_what_the_run_bills(owner):
    from invoices.models import Invoice
    from tests.factories import ACTOR
    from usage.services import usage_bill_month

    # given pre-rated usage in two services and a staff line on the month's invoice
    for n, (service, cost) in enumerate([("EC2", "0.50"), ("EC2", "0.25"), ("S3", "1.125")]):
        UsageRecord.objects.create(
            account=owner.account,
            client_id=f"c{n}",
            resource_id="i-1",
            service=service,
            region="us-west-1",
            start_time=dt.datetime(2026, 11, 3, n, tzinfo=dt.UTC),
            end_time=dt.datetime(2026, 11, 3, n + 1, tzinfo=dt.UTC),
            duration=3600,
            cost=D(cost),
        )
    client = client_for(owner.secret)
    url = f"/v1/customers/{owner.account.pk}/upcoming_invoice?month=2026-11"
    preview = client.get(url).json()
    # when the run bills the month
    usage_bill_month(month=dt.date(2026, 11, 1))
    invoice = Invoice.objects.get(account=owner.account, period=dt.date(2026, 11, 1))
    # then the preview had its lines and totals
    assert preview["total"] == float(invoice.cost) == 1.88
    assert sorted(line["subtotal"] for line in preview["line_items"]) == sorted(
        float(line.cost) for line in invoice.line_items.all()
    )
    # and a preview of the open invoice keeps its id and the lines staff added
    from invoices import services as invoice_services

    invoice_services.line_item_add(
        invoice=invoice, name="Support", quantity=D(1), unit_price=D("10.00"), actor=ACTOR
    )
    again = client.get(url).json()
    assert again["id"] == invoice.pk
    assert again["total"] == 11.88
    assert Invoice.objects.count() == 1
