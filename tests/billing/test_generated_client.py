"""A client generated from docs/openapi.yaml drives both APIs against a live server.

openapi-python-client generates a package from the committed schema (with
docs/openapi-python-client.yaml) into a temporary directory, with no warning
and one function per operation; the test imports it and runs the main flows:
the 3scale invoice life cycle, the /v1 one, and usage ingestion and report.
"""

from __future__ import annotations

import datetime as dt
import importlib
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from django.conf import settings

from tests.factories import AccountFactory, make_api_key

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ROOT = Path(settings.BASE_DIR)
SCHEMA = ROOT / "docs" / "openapi.yaml"
CONFIG = ROOT / "docs" / "openapi-python-client.yaml"
PACKAGE = "billing_client"


def _generator() -> str:
    found = shutil.which("openapi-python-client") or str(
        Path(sys.executable).with_name("openapi-python-client")
    )
    if not Path(found).exists():
        pytest.skip("openapi-python-client is not installed (requirements.txt)")
    return found


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """The generated package, imported (and unloaded afterwards)."""
    out = tmp_path_factory.mktemp("client")
    target = out / PACKAGE
    result = subprocess.run(
        [
            _generator(),
            "generate",
            "--path",
            str(SCHEMA),
            "--config",
            str(CONFIG),
            "--meta",
            "none",
            "--output-path",
            str(target),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Warning" not in output and "WARNING" not in output, output
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(out))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def _api(package: str, name: str):
    return importlib.import_module(f"{PACKAGE}.api.{package}.{name}")


def _model(name: str):
    return getattr(importlib.import_module(f"{PACKAGE}.models"), name)


def test_every_operation_is_generated(generated):
    schema = yaml.safe_load(SCHEMA.read_text())
    operations = {
        re.sub(r"[^a-z0-9_]", "", operation["operationId"].lower())
        for item in schema["paths"].values()
        for method, operation in item.items()
        if method in {"get", "put", "post", "patch", "delete"}
    }
    api_dir = Path(generated.__file__).parent / "api"
    modules = {path.stem for path in api_dir.glob("*/*.py") if path.stem != "__init__"}
    assert operations == modules


@dataclass
class Session:
    api: object  # the generated AuthenticatedClient
    account_id: int


@pytest.fixture
def session(generated, live_server) -> Session:
    account = AccountFactory(org_name="Generated Client Co", vat_rate=Decimal("21"))
    _key, secret = make_api_key(scope="write", name="generated client")
    # The /api URLs without a suffix answer XML unless asked for JSON.
    api = generated.AuthenticatedClient(
        base_url=live_server.url,
        token=secret,
        headers={"Accept": "application/json"},
        raise_on_unexpected_status=True,
    )
    return Session(api=api, account_id=account.pk)


def test_threescale_invoice_flow(session):
    client = session.api
    Invoice = _model("ThreeScaleInvoiceEnvelope")
    json = "api_invoices_formatted"
    fmt = _model("ApiInvoicesFormattedCreateFormat")(".json")
    created = _api("tag3scale_invoices", f"{json}_create").sync_detailed(
        fmt,
        client=client,
        body=_model("ThreeScaleInvoiceCreate")(account_id=session.account_id),
    )
    assert created.status_code == 201, created.content
    assert isinstance(created.parsed, Invoice)
    invoice_id = created.parsed.invoice.id
    assert created.headers["Location"].endswith(f"/api/invoices/{invoice_id}")

    line = _api("tag3scale_line_items", "api_invoices_line_items_formatted_create").sync_detailed(
        invoice_id,
        _model("ApiInvoicesLineItemsFormattedCreateFormat")(".json"),
        client=client,
        body=_model("ThreeScaleLineItemCreate")(name="Plan", cost=100.0),
    )
    assert line.status_code == 201, line.content
    assert isinstance(line.parsed, _model("ThreeScaleLineItemEnvelope"))

    state = _model("ThreeScaleInvoiceState")
    for target in ("finalized", "pending"):
        moved = _api("tag3scale_invoices", "api_invoices_state_formatted_update").sync_detailed(
            invoice_id,
            _model("ApiInvoicesStateFormattedUpdateFormat")(".json"),
            client=client,
            body=state(state=_model("ThreeScaleInvoiceStateStateEnum")(target)),
        )
        assert moved.status_code == 200, moved.content
        assert moved.parsed.invoice.state == target

    charged = _api("tag3scale_invoices", "api_invoices_charge_formatted_create").sync_detailed(
        invoice_id, _model("ApiInvoicesChargeFormattedCreateFormat")(".json"), client=client
    )
    assert charged.status_code == 201, charged.content
    assert charged.parsed.invoice.state == "paid"
    assert charged.parsed.invoice.cost == Decimal("121.00")

    listed = _api("tag3scale_invoices", f"{json}_list").sync(
        _model("ApiInvoicesFormattedListFormat")(".json"), client=client, state=["paid"]
    )
    assert [item.invoice.id for item in listed.invoices] == [invoice_id]

    # The operation without a suffix, JSON through the client's Accept header.
    read = _api("tag3scale_invoices", "api_invoices_retrieve").sync(invoice_id, client=client)
    assert isinstance(read, Invoice)
    assert read.invoice.friendly_id

    transactions = _api(
        "tag3scale_invoices", "api_invoices_payment_transactions_formatted_list"
    ).sync(
        invoice_id,
        _model("ApiInvoicesPaymentTransactionsFormattedListFormat")(".json"),
        client=client,
    )
    assert [t.payment_transaction.success for t in transactions.payment_transactions] == [True]


def test_v1_invoice_flow(session):
    client = session.api
    v1 = "v1"
    created = _api(v1, "v1_invoices_create").sync_detailed(
        client=client,
        body=_model("InvoiceCreate")(customer_id=session.account_id, amount=100.0, draft=True),
        idempotency_key="generated-client-1",
    )
    assert created.status_code == 201, created.content
    invoice = created.parsed
    assert isinstance(invoice, _model("Invoice"))

    listed = _api(v1, "v1_invoices_list").sync(client=client, customer_id=session.account_id)
    assert [item.id for item in listed] == [invoice.id]
    read = _api(v1, "v1_invoices_retrieve").sync(invoice.id, client=client)
    assert read.id == invoice.id

    today = dt.datetime.now(dt.UTC).date()
    issued = _api(v1, "v1_invoices_issue_create").sync(
        invoice.id,
        client=client,
        body=_model("InvoiceIssue")(date=today, due_date=today + dt.timedelta(days=30)),
    )
    assert str(issued.status) != "draft"
    paid = _api(v1, "v1_invoices_mark_paid_create").sync(
        invoice.id, client=client, body=_model("InvoiceMarkPaid")()
    )
    assert paid.payment is not None
    assert _api(v1, "v1_invoices_retrieve").sync(invoice.id, client=client).status == paid.status


def test_usage_ingest_and_report(session):
    client = session.api
    record = _model("UsageRecordSchema")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    records = [
        record(
            id=f"gen-{n}",
            account_id=session.account_id,
            resource_id=f"i-{n}",
            service="EC2",
            region="us-west-1",
            start_time=now - dt.timedelta(hours=n + 2),
            end_time=now - dt.timedelta(hours=n + 1),
            cost=1.25,
        )
        for n in range(3)
    ]
    ingest = _api("v1", "v1_usage_create")
    stored = ingest.sync_detailed(client=client, body=records)
    assert stored.status_code == 201, stored.content
    assert (stored.parsed.received, stored.parsed.stored) == (3, 3)
    again = ingest.sync_detailed(client=client, body=records[0])
    assert again.status_code == 200, again.content
    assert again.parsed.duplicates == 1

    report = _api("v1", "v1_usage_report_retrieve").sync(
        client=client,
        start_date=(now - dt.timedelta(days=1)).date(),
        end_date=now.date(),
        account_id=session.account_id,
        group_by=_model("V1UsageReportRetrieveGroupBy")("service"),
    )
    assert isinstance(report, _model("UsageReport"))
    assert [row.service for row in report.usage] == ["EC2"]
    assert report.total_cost == 3.75
