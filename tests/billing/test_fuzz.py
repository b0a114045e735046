"""Schema fuzzing: every /api, /admin/api and /v1 operation, driven by docs/openapi.yaml.

Schemathesis generates requests (valid and invalid) from the committed schema
and sends them in-process to the WSGI application with a provider-wide write
key. Every answer must be a documented status code with a body that matches
the schema, and never a 5xx. FUZZ_EXAMPLES sets the examples per operation
(a handful in the regular suite; `make fuzz` runs many more).
"""

from __future__ import annotations

import datetime as dt
import os
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import yaml
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import CHECKS as REGISTERED_CHECKS
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi import checks as openapi_checks

from accounts.models import Account
from invoices.models import Invoice
from tests.factories import AccountFactory, make_api_key, make_invoice
from tests.support.artifacts import record_figures
from usage import services as usage_services

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))
THREESCALE_PREFIXES = ("/api/", "/admin/api/")


def _is_business_refusal(case, response) -> bool:
    """A well-formed request refused for the state of the data, which no schema can say:
    an id this key cannot see (404), a state change, charge or line the invoice's state
    refuses (3scale 422, /v1 409), a declined card (402), or a /v1 validation against
    stored data (400 `validation_error`: unknown customer, another currency, a date
    before the billed month, lines that do not add up to `amount`), or an
    Idempotency-Key an earlier generated request already used (/v1 422).

    One refusal is not about state: 3scale's update answers 400 `Required parameter
    missing: invoice` to a body with no invoice attribute (Rails' `params.require`),
    which its schema leaves optional so that generated clients keep working."""
    status = response.status_code
    if status in (402, 404, 409):
        return True
    if case.path.startswith(THREESCALE_PREFIXES):
        if status == 400:
            return response.text.startswith("Required parameter missing")
        return status == 422
    if status in (400, 422):
        try:
            code = response.json()["error"]["code"]
        except (ValueError, KeyError, TypeError):
            return False
        return code == ("validation_error" if status == 400 else "idempotency_key_reused")
    return False


def positive_data_acceptance(ctx, response, case):
    """schemathesis' check, except for business refusals (docs/reliability.md)."""
    if _is_business_refusal(case, response):
        return None
    return openapi_checks.positive_data_acceptance(ctx, response, case)


def negative_data_rejection(ctx, response, case):
    """schemathesis' check, except for the 3scale query string: like Rails, 3scale reads
    a bad `page`, `per_page`, `month` or `year` as the default instead of refusing it
    (docs/reliability.md)."""
    components = getattr(case.meta, "components", None) or {}
    query = components.get(ParameterLocation.QUERY)
    if (
        case.path.startswith(THREESCALE_PREFIXES)
        and query is not None
        and query.mode == schemathesis.GenerationMode.NEGATIVE
    ):
        return None
    return openapi_checks.negative_data_rejection(ctx, response, case)


# Every check schemathesis has (`--checks all`), two of them with the exclusions above.
_REPLACED: dict[Any, Any] = {
    openapi_checks.positive_data_acceptance: positive_data_acceptance,
    openapi_checks.negative_data_rejection: negative_data_rejection,
}
CHECKS = [_REPLACED.get(check, check) for check in REGISTERED_CHECKS.get_all()]
assert positive_data_acceptance in CHECKS and negative_data_rejection in CHECKS

schema = schemathesis.openapi.from_dict(
    yaml.safe_load((ROOT / "docs" / "openapi.yaml").read_text())
)
schema.app = get_wsgi_application()
schema.config.generation.update(
    modes=[schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE],
    max_examples=EXAMPLES,
    # The key is ours (a valid write key): the authorization matrix covers bad ones.
    with_security_parameters=False,
)
# The per-operation budget is ours (FUZZ_EXAMPLES); the stateful and coverage
# phases would multiply the run time without adding operations.
schema.config.phases.update(phases=["examples", "fuzzing"])


class _World:
    """Ids of real objects, so generated ids hit existing rows, not only 404s."""

    accounts: list[int] = []
    invoices: list[int] = []
    line_items: list[int] = []
    secret: str = ""


# What this process sent, for docs/reliability.md (one file per xdist worker).
FIGURES: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def _write_figures():
    yield
    if not FIGURES:
        return
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    figures = {"examples_per_operation": EXAMPLES, **dict(sorted(FIGURES.items()))}
    record_figures(f"fuzz-{worker}", **figures)


ID_PARAMETERS = {"id": "invoices", "invoice_id": "invoices", "account_id": "accounts"}


@pytest.fixture
def in_test_transaction():
    """Keep the test's connection across requests, as Django's test client does.

    The WSGI handler closes "old" connections at the start and end of every
    request, and a connection inside the test's transaction counts as old.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def world(db, in_test_transaction) -> type[_World]:
    now = dt.datetime.now(dt.UTC)
    accounts = [AccountFactory(org_name=f"Fuzz {n}", vat_rate=Decimal("21")) for n in range(2)]
    invoices: list[Invoice] = []
    for account in accounts:
        for state in (
            Invoice.State.OPEN,
            Invoice.State.FINALIZED,
            Invoice.State.PENDING,
            Invoice.State.UNPAID,
            Invoice.State.PAID,
            Invoice.State.CANCELLED,
        ):
            invoices.append(make_invoice(account=account, state=state, lines=[("2", "9.99")]))
    usage_services.usage_ingest(
        records=[
            {
                "id": f"fuzz-{n}",
                "account_id": accounts[n % 2].pk,
                "resource_id": f"i-{n}",
                "service": "EC2",
                "region": "us-west-1",
                "start_time": (now - dt.timedelta(hours=n + 2)).isoformat(),
                "end_time": (now - dt.timedelta(hours=n + 1)).isoformat(),
                "cost": "0.25",
            }
            for n in range(4)
        ]
    )
    _key, secret = make_api_key(scope="write", name="fuzz key")
    _World.accounts = [a.pk for a in accounts]
    _World.invoices = [i.pk for i in invoices]
    _World.line_items = [line.pk for i in invoices for line in i.line_items.all()]
    _World.secret = secret
    return _World


def _aim(case) -> None:
    """Point most generated ids at real rows; every fourth stays as generated (mostly 404)."""
    params = case.path_parameters or {}
    for name, value in list(params.items()):
        if not isinstance(value, int) or value % 4 == 0:
            continue
        if name == "id" and "line_items" in case.path:
            pool = _World.line_items
        elif name in ID_PARAMETERS:
            pool = getattr(_World, ID_PARAMETERS[name])
        else:
            continue
        params[name] = pool[value % len(pool)]


def _path_is_invalid(case) -> bool:
    """A negative path parameter makes a URL of no operation (another route, or none)."""
    components = getattr(case.meta, "components", None) or {}
    info = components.get(ParameterLocation.PATH)
    return info is not None and info.mode == schemathesis.GenerationMode.NEGATIVE


@schema.parametrize()
@settings(
    deadline=None,
    max_examples=EXAMPLES,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)
def test_api_conforms_to_its_schema(case, world):
    headers = {"Authorization": f"Bearer {world.secret}"}
    if _path_is_invalid(case):
        # Not this operation's URL any more: it must still fail cleanly, and an API
        # path must answer in the API's format, never with an HTML page.
        response = case.call(headers=headers)
        FIGURES["requests"] += 1
        FIGURES[f"status_{response.status_code // 100}xx"] += 1
        assert response.status_code < 500, response.text[:500]
        if response.status_code >= 400 and case.formatted_path.startswith(("/v1/", "/api/")):
            assert not response.headers.get("Content-Type", [""])[0].startswith("text/html")
        return
    _aim(case)
    response = case.call_and_validate(headers=headers, checks=CHECKS)
    FIGURES["requests"] += 1
    FIGURES[f"status_{response.status_code // 100}xx"] += 1
    # The generated traffic may change data, never break its invariants.
    for invoice in Invoice.objects.all():
        assert invoice.cost == invoice.cost_without_vat + invoice.vat_amount
    assert Account.objects.exists()
