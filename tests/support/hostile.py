"""The hostile-input harness: a world of real rows, a database fingerprint, and a
client that counts what it sends.

Every hostile request goes through `Hostile.send`, which records the request
(and whether it answered 5xx) on the running test; the counts travel with the
test report (so they add up across xdist workers), and tests/conftest.py adds them
up and ends the run with the line `hostile: N requests, M answered 5xx`.
The fixtures (`world`, `shared_world`, `hostile`) are in tests/hostile/conftest.py.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from xml.etree import ElementTree

import pytest
from django.apps import apps
from django.db import connection
from django.test import Client
from django.utils import timezone

from accounts.models import Account, ApiKey
from billing.api.threescale.errors import humanize
from invoices.models import Invoice
from tests.factories import AccountFactory, make_api_key, make_invoice

# Columns that change on a read, not on a write: a key's last use.
VOLATILE_COLUMNS = {(ApiKey, "last_used_at")}
FINGERPRINT_APPS = ("accounts", "invoices", "usage")
# Internal Python messages that must never reach a client.
LEAKS = ("sys.set_int_max_str_digits", "invalid literal for int()", "Traceback")


# --- the fingerprint -------------------------------------------------------------------


def fingerprint() -> dict[str, tuple[int, str]]:
    """For each model of accounts, invoices and usage: its row count and a digest of
    every value of every row (so any insert, update or delete shows). Plain SQL: it
    runs twice per hostile request."""
    result: dict[str, tuple[int, str]] = {}
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        for model in _fingerprint_models():
            columns = [
                quote(f.column)
                for f in model._meta.concrete_fields
                if (model, f.attname) not in VOLATILE_COLUMNS
            ]
            table = quote(model._meta.db_table)
            pk = quote(model._meta.pk.column)
            cursor.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {pk}")
            rows = cursor.fetchall()
            digest = hashlib.sha256(repr(rows).encode("utf-8", "backslashreplace"))
            result[f"{model._meta.label}"] = (len(rows), digest.hexdigest()[:16])
    return result


def _fingerprint_models() -> list:
    return [
        model for label in FINGERPRINT_APPS for model in apps.get_app_config(label).get_models()
    ]


def changed(before: dict, after: dict) -> list[str]:
    return [name for name in before if before[name] != after.get(name)]


# --- the world ---------------------------------------------------------------------------


@dataclass
class World:
    owner: Account
    other: Account
    owner_secret: str  # a write key limited to the owner's account
    other_secret: str
    provider_secret: str  # a provider-wide write key
    open_invoice: Invoice
    pending_invoice: Invoice
    other_invoice: Invoice
    ids: dict[str, Any] = field(default_factory=dict)

    def fill(self, template: str) -> str:
        return template.format(**self.ids)


def build_world() -> World:
    """Two accounts with their keys, a provider-wide key, and the owner's open and pending
    invoices beside the other account's open one."""
    now = timezone.now()
    owner = AccountFactory(org_name="Hostile Owner Inc", vat_rate=Decimal("21"))
    other = AccountFactory(org_name="Hostile Other Ltd")
    _key, owner_secret = make_api_key(scope="write", account=owner, name="owner")
    _key, other_secret = make_api_key(scope="write", account=other, name="other")
    _key, provider_secret = make_api_key(scope="write", name="provider")
    open_invoice = make_invoice(account=owner, lines=[("2", "10.00")], now=now)
    pending_invoice = make_invoice(account=owner, state=Invoice.State.PENDING, now=now)
    other_invoice = make_invoice(account=other, lines=[("1", "5.00")], now=now)
    world = World(
        owner=owner,
        other=other,
        owner_secret=owner_secret,
        other_secret=other_secret,
        provider_secret=provider_secret,
        open_invoice=open_invoice,
        pending_invoice=pending_invoice,
        other_invoice=other_invoice,
    )
    today = now.date()
    world.ids = {
        "owner": owner.pk,
        "other": other.pk,
        "open": open_invoice.pk,
        "pending": pending_invoice.pk,
        "other_invoice": other_invoice.pk,
        "line": open_invoice.line_items.first().pk,
        "other_line": other_invoice.line_items.first().pk,
        "today": today.isoformat(),
        "due": (today + dt.timedelta(days=30)).isoformat(),
        "month": today.strftime("%Y-%m"),
    }
    return world


# --- sending ------------------------------------------------------------------------------


_clients: list[Client] = []


def _client() -> Client:
    """One client for the whole run: building one loads the middleware again (WhiteNoise
    scans the static files each time). It keeps no state between requests but cookies,
    and no hostile request logs in."""
    if not _clients:
        # A 500 must come back as a 500 (and be counted), not as the view's exception.
        _clients.append(Client(raise_request_exception=False))
    return _clients[0]


class Hostile:
    """A Django test client that counts the hostile requests of the running test."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self.client = _client()
        self.node = request.node
        self.sent = 0
        self.server_errors = 0

    def _count(self, response) -> None:
        self.sent += 1
        if response.status_code >= 500:
            self.server_errors += 1

    def send(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        content_type: str = "application/json",
        secret: str | None = None,
        bearer: bool = False,
        **extra: Any,
    ):
        """One request; the key goes as `Authorization: Bearer` (/v1) or `access_token` (/api)."""
        if secret is not None:
            if bearer:
                extra["HTTP_AUTHORIZATION"] = f"Bearer {secret}"
            else:
                path += ("&" if "?" in path else "?") + f"access_token={secret}"
        if body is None:
            response = self.client.generic(method, path, **extra)
        else:
            response = self.client.generic(method, path, body, content_type=content_type, **extra)
        self._count(response)
        return response

    def send_environ(self, environ: dict[str, Any]):
        """A request built from a raw WSGI environ (a body the test client cannot express)."""
        response = self.client.request(**environ)
        self._count(response)
        return response

    def flush(self) -> None:
        self.node.user_properties.append(("hostile_requests", self.sent))
        self.node.user_properties.append(("hostile_5xx", self.server_errors))


# --- what an answer must look like ---------------------------------------------------------


def body_text(response) -> str:
    return response.content.decode("utf-8", "replace")


def assert_no_leak(response) -> None:
    text = body_text(response)
    for leak in LEAKS:
        assert leak not in text, f"internal message in the answer: {text[:300]}"


def _is_key_for(key: str, field_name: str) -> bool:
    """`key` is the field itself or a part of it: `billing_address[city]` for
    `billing_address`, `filters.region` for `region`; `due_date` is not `date`."""
    return (
        key == field_name
        or key.startswith((f"{field_name}[", f"{field_name}."))
        or key.endswith((f".{field_name}", f"[{field_name}]"))
    )


def _mentions(message: str, field_name: str) -> bool:
    """The field as a word of a message ("Cannot transition to ...", "Period format ...")."""
    spoken = {field_name, field_name.replace("_", " "), humanize(field_name)}
    return any(
        re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", message, re.IGNORECASE)
        for name in spoken
        if name
    )


def threescale_names(response, field_name: str) -> bool:
    """A 3scale error names the field: as a key of `errors`, or in a message
    (XML carries Rails' full messages: "Account is not a number" for account_id)."""
    text = body_text(response)
    if response["Content-Type"].startswith("application/json"):
        data = json.loads(text)
        errors = data.get("errors") if isinstance(data, dict) else None
        if not isinstance(errors, dict):
            return False
        if any(_is_key_for(key, field_name) for key in errors):
            return True
        messages = [str(m) for items in errors.values() for m in (items or [])]
    else:
        try:
            root = ElementTree.fromstring(response.content)
            messages = [e.text or "" for e in root.iter("error")]
        except ElementTree.ParseError:  # a plain-text 400 (a missing parameter)
            messages = [text]
    return any(_mentions(message, field_name) for message in messages)


def v1_names(response, field_name: str) -> bool:
    """A /v1 error names the field: a key of `error.details`, a bad record's `field`
    (usage batches), or a word of the message when there are no details."""
    data = json.loads(body_text(response))
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("code"), str):
        return False
    details = error.get("details") or {}
    records = details.get("records") if isinstance(details, dict) else None
    if isinstance(records, list) and any(isinstance(r, dict) for r in records):
        return any(
            isinstance(r, dict) and _is_key_for(str(r.get("field", "")), field_name)
            for r in records
        )
    if isinstance(details, dict) and details:
        return any(_is_key_for(key, field_name) for key in details)
    return _mentions(str(error.get("message", "")), field_name)
