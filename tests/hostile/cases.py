"""The tables of the hostile-input suite: hostile values by family, and every
parameter of every write endpoint (and list filter) of both APIs.

A value is raw text spliced into a request: `json` into a JSON body (so a lone
surrogate travels as the `\\ud800` escape and a number as a bare token), `query`
into a query string, already percent-encoded (None: the value has no query form).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

MARK = "__HOSTILE__"


@dataclass(frozen=True)
class Value:
    id: str
    json: str
    query: str | None
    # A strict JSON reader may refuse the whole body (400, no field named): a lone
    # surrogate, NaN and Infinity (not JSON) and integers past the parser's digit limit.
    unparsable: bool = False


def _text(value: str) -> str:
    return json.dumps(value)  # ASCII escapes: "\ud800", "\u0000", "\u00b2"


def _q(value: str) -> str:
    return quote(value, safe="")


SURROGATE = Value("surrogate", '"\\ud800"', "%ED%A0%80", unparsable=True)
NUL = Value("nul", '"a\\u0000b"', "a%00b")
LONG = Value("text-10k", _text("x" * 10_000), "x" * 10_000)
LIST = Value("list", '["x"]', None)

TEXT = (SURROGATE, NUL, LONG, LIST)
# A text column without a limit (a line's description): 10,000 characters are data.
FREE_TEXT = (SURROGATE, NUL, LIST)
CHOICE = TEXT


def _digits(id_: str, text: str) -> Value:
    return Value(id_, _text(text), _q(text))


NUMBER = (
    _digits("superscript-2", "²"),
    _digits("arabic-indic-3", "٣"),
    _digits("fullwidth-3", "３"),
    _digits("underscore-1_000", "1_000"),
    # Past a binary float's range: a float-based reader may refuse the whole body.
    Value("1e400", "1e400", "1e400", unparsable=True),
    Value("-1e400", "-1e400", "-1e400", unparsable=True),
    Value("1e-400", "1e-400", "1e-400"),
    Value("digits-10k", "9" * 10_000, "9" * 10_000, unparsable=True),
    Value("NaN", "NaN", "NaN", unparsable=True),
    Value("Infinity", "Infinity", "Infinity", unparsable=True),
    SURROGATE,
    NUL,
)

DATE = (
    _digits("year-0", "0000-01-01"),
    _digits("year-9999", "9999-12-31"),
    _digits("month-13", "2026-13-01"),
    _digits("month-00", "2026-00-10"),
    _digits("fullwidth-date", "２０２６-０１-０１"),
    _digits("arabic-indic-date", "٢٠٢٦-٠١-٠١"),
    SURROGATE,
    NUL,
)

TIMESTAMP = (
    _digits("year-0", "0000-01-01T00:00:00Z"),
    _digits("year-9999-west", "9999-12-31T23:59:59-14:00"),
    _digits("year-1-east", "0001-01-01T00:00:00+14:00"),
    _digits("month-13", "2026-13-01T00:00:00Z"),
    _digits("fullwidth-time", "２０２６-０１-０１T00:00:00Z"),
    SURROGATE,
    NUL,
)

MONTH = (
    _digits("year-0", "0000-01"),
    _digits("year-9999", "9999-12"),
    _digits("month-13", "2026-13"),
    _digits("month-00", "2026-00"),
    _digits("fullwidth-month", "２０２６-０１"),
    _digits("arabic-indic-month", "٢٠٢٦-٠١"),
    SURROGATE,
    NUL,
)

YEAR = (*NUMBER, _digits("year-0000", "0000"), _digits("superscripts", "²²²²"))
MONTH_NUMBER = (*NUMBER, _digits("00", "00"), _digits("13", "13"))

# No list here: /api's update ignores an object sent back for a field, as Rails does.
FRIENDLY_ID = (
    SURROGATE,
    NUL,
    LONG,
    _digits("month-13", "2026-13-00000001"),
    _digits("month-00", "2026-00-00000001"),
    _digits("fullwidth", "２０２６-０１-０００００００１"),
    _digits("arabic-indic", "٢٠٢٦-٠١-٠٠٠٠٠٠٠١"),
)

BOOL = (SURROGATE, NUL, _digits("superscript-1", "¹"), Value("1e400", "1e400", "1e400"), LIST)

FAMILIES: dict[str, tuple[Value, ...]] = {
    "text": TEXT,
    "free_text": FREE_TEXT,
    "choice": CHOICE,
    "number": NUMBER,
    "date": DATE,
    "timestamp": TIMESTAMP,
    "month": MONTH,
    "year": YEAR,
    "month_number": MONTH_NUMBER,
    "friendly_id": FRIENDLY_ID,
    "bool": BOOL,
}


# --- targets ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One parameter of one endpoint."""

    id: str
    api: str  # "3scale" or "v1"
    method: str
    path: str  # formatted with World.ids
    field: str  # the name the error must carry
    family: str
    # Where the value goes: a path into the JSON body, or query parameter names.
    at: tuple[Any, ...] = ()
    query_names: tuple[str, ...] = ()
    base: Callable[[dict], Any] = dataclasses.field(default=lambda ids: {})
    base_query: str = ""
    key: str = "owner"  # owner (limited to the owner's account) or provider (all accounts)
    read: bool = False  # a read: a 200 is fine, a 4xx must still name the field
    empty_when_ok: bool = False  # a filter: a 200 must match nothing
    also_named: tuple[str, ...] = ()  # other names an error may carry instead


def _line(ids: dict) -> dict:
    return {"name": "Hosting", "description": "Hosting, March", "cost": "10.00", "quantity": "1"}


def _seed(ids: dict) -> dict:
    return {
        "customer_id": ids["owner"],
        "amount": "100.00",
        "date": ids["today"],
        "due_date": ids["due"],
    }


def _with_lines(ids: dict) -> dict:
    return {
        "customer_id": ids["owner"],
        "date": ids["today"],
        "due_date": ids["due"],
        "line_items": [{"description": "Hosting", "quantity": "2", "price": "10.00"}],
    }


def _v1_lines(ids: dict) -> dict:
    return {"line_items": [{"description": "Hosting", "quantity": "2", "price": "10.00"}]}


def _usage_record(ids: dict) -> dict:
    return {
        "id": "hostile-1",
        "resource_id": "i-1",
        "resource_name": "web-1",
        "service": "EC2",
        "region": "us-west-1",
        "start_time": "2026-01-01T00:00:00Z",
        "end_time": "2026-01-01T01:00:00Z",
        "cost": "0.50",
    }


def _report(ids: dict) -> dict:
    return {"start_date": "2026-01-01", "end_date": "2026-01-31"}


ACCOUNT_TEXT_FIELDS = (
    "org_name",
    "email",
    "billing_email",
    "vat_code",
    "currency",
    "payment_method",
    "address_line1",
    "address_line2",
    "city",
    "address_state",
    "zip",
    "country",
    "phone",
)
ACCOUNT_NUMBER_FIELDS = ("vat_rate", "payment_terms_days")
# 3scale's address key -> the account field it fills (an error may name either).
BILLING_ADDRESS_KEYS = {
    "address1": "address_line1",
    "city": "city",
    "zip": "zip",
    "country": "country",
    "phone": "phone",
}


def _account_targets(name: str, method: str, path: str, base) -> list[Target]:
    targets = [
        Target(f"{name}.{f}", "3scale", method, path, f, "text", (f,), base=base, key="provider")
        for f in ACCOUNT_TEXT_FIELDS
    ]
    targets += [
        Target(f"{name}.{f}", "3scale", method, path, f, "number", (f,), base=base, key="provider")
        for f in ACCOUNT_NUMBER_FIELDS
    ]
    targets += [
        Target(
            f"{name}.billing_address.{k}",
            "3scale",
            method,
            path,
            "billing_address",
            "text",
            ("billing_address", k),
            base=base,
            key="provider",
            also_named=(k, account_field),
        )
        for k, account_field in BILLING_ADDRESS_KEYS.items()
    ]
    return targets


def _threescale_targets() -> list[Target]:
    create = "/api/invoices.json"
    targets = [
        Target(
            "api.invoice_create.account_id",
            "3scale",
            "POST",
            create,
            "account_id",
            "number",
            ("account_id",),
            base=lambda ids: {"account_id": ids["owner"], "period": ids["month"]},
            # No account has a hostile id: 3scale answers for its blank buyer.
            also_named=("buyer_account",),
        ),
        Target(
            "api.invoice_create.period",
            "3scale",
            "POST",
            create,
            "period",
            "month",
            ("period",),
            base=lambda ids: {"account_id": ids["owner"], "period": ids["month"]},
        ),
        Target(
            "api.invoice_create_xml.account_id",
            "3scale",
            "POST",
            "/api/invoices.xml",
            "account_id",
            "number",
            ("account_id",),
            base=lambda ids: {"account_id": ids["owner"], "period": ids["month"]},
            # No account has a hostile id: 3scale answers for its blank buyer.
            also_named=("buyer_account",),
        ),
        Target(
            "api.invoice_create_xml.period",
            "3scale",
            "POST",
            "/api/invoices.xml",
            "period",
            "month",
            ("period",),
            base=lambda ids: {"account_id": ids["owner"], "period": ids["month"]},
        ),
        Target(
            "api.invoice_update.period",
            "3scale",
            "PUT",
            "/api/invoices/{open}.json",
            "period",
            "month",
            ("period",),
        ),
        Target(
            "api.invoice_update.friendly_id",
            "3scale",
            "PUT",
            "/api/invoices/{open}.json",
            "friendly_id",
            "friendly_id",
            ("friendly_id",),
        ),
        Target(
            "api.invoice_state.state",
            "3scale",
            "PUT",
            "/api/invoices/{open}/state.json",
            "state",
            "choice",
            ("state",),
            # 3scale's refusal of a state names the transition, under `base`.
            also_named=("transition",),
        ),
    ]
    line_fields = {
        "name": "text",  # 255 characters at most: a longer one is refused, not cut
        "description": "free_text",
        "quantity": "number",
        "cost": "number",
        "metric_id": "number",
        "contract_id": "number",
        "plan_id": "number",
        "type": "choice",
    }
    for name, family in line_fields.items():
        targets.append(
            Target(
                f"api.line_item_create.{name}",
                "3scale",
                "POST",
                "/api/invoices/{open}/line_items.json",
                name,
                family,
                (name,),
                base=_line,
            )
        )
    targets += _account_targets(
        "admin.signup",
        "POST",
        "/admin/api/signup.json",
        lambda ids: {"org_name": "Hostile Signup", "email": "signup@example.test"},
    )
    targets += _account_targets(
        "admin.account_update",
        "PUT",
        "/admin/api/accounts/{owner}.json",
        lambda ids: {"org_name": "Hostile Owner Inc"},
    )
    filters = {
        "state": "choice",
        "month": "month",
        "year": "year",
        "month_number": "month_number",
        "number": "friendly_id",
        "buyer_query": "text",
    }
    for name, family in filters.items():
        targets.append(
            Target(
                f"api.invoice_list.{name}",
                "3scale",
                "GET",
                "/api/invoices.json",
                name,
                family,
                query_names=(name,),
                read=True,
                empty_when_ok=True,
            )
        )
    for name in ("page", "per_page"):
        targets.append(
            Target(
                f"api.invoice_list.{name}",
                "3scale",
                "GET",
                "/api/invoices.json",
                name,
                "number",
                query_names=(name,),
                read=True,
            )
        )
    return targets


def _v1_targets() -> list[Target]:
    targets: list[Target] = []
    seed_fields = {
        "customer_id": "number",
        "amount": "number",
        "date": "date",
        "due_date": "date",
        "currency": "choice",
        "description": "text",
        "draft": "bool",
    }
    for name, family in seed_fields.items():
        targets.append(
            Target(
                f"v1.invoice_create.{name}",
                "v1",
                "POST",
                "/v1/invoices",
                name,
                family,
                (name,),
                base=_seed,
            )
        )
    line_fields = {"description": "text", "quantity": "number", "price": "number"}
    for name, family in line_fields.items():
        targets.append(
            Target(
                f"v1.invoice_create.line_items.{name}",
                "v1",
                "POST",
                "/v1/invoices",
                f"line_items[0].{name}",
                family,
                ("line_items", 0, name),
                base=_with_lines,
            )
        )
    draft_fields = {
        "date": "date",
        "amount": "number",
        "currency": "choice",
        "description": "text",
        "customer_id": "number",
    }
    for method, base in (
        ("PATCH", lambda ids: {}),
        ("PUT", lambda ids: {"date": ids["today"], "amount": "10.00"}),
    ):
        for name, family in draft_fields.items():
            targets.append(
                Target(
                    f"v1.invoice_{method.lower()}.{name}",
                    "v1",
                    method,
                    "/v1/invoices/{open}",
                    name,
                    family,
                    (name,),
                    base=base,
                )
            )
        for name, family in line_fields.items():
            targets.append(
                Target(
                    f"v1.invoice_{method.lower()}.line_items.{name}",
                    "v1",
                    method,
                    "/v1/invoices/{open}",
                    f"line_items[0].{name}",
                    family,
                    ("line_items", 0, name),
                    base=(lambda ids: {"date": ids["today"], **_v1_lines(ids)})
                    if method == "PUT"
                    else _v1_lines,
                )
            )
    actions = [
        ("issue", "{open}", "date", "date"),
        ("issue", "{open}", "due_date", "date"),
        ("cancel", "{open}", "reason", "text"),
        ("mark_paid", "{pending}", "method", "choice"),
        ("mark_paid", "{pending}", "reference", "text"),
        ("charge", "{pending}", "note", "text"),  # charge takes no body: any field is refused
    ]
    for action, invoice, name, family in actions:
        targets.append(
            Target(
                f"v1.invoice_{action}.{name}",
                "v1",
                "POST",
                f"/v1/invoices/{invoice}/{action}",
                name,
                family,
                (name,),
            )
        )
    filters = {
        "state": "choice",
        "status": "choice",
        "month": "month",
        "customer_id": "number",
        "issued_from": "date",
        "issued_to": "date",
        "ordering": "choice",
    }
    for name, family in filters.items():
        targets.append(
            Target(
                f"v1.invoice_list.{name}",
                "v1",
                "GET",
                "/v1/invoices",
                name,
                family,
                query_names=(name,),
                read=True,
                # A date bound may rightly match every row (issued_to=9999-12-31).
                empty_when_ok=name != "ordering" and family != "date",
            )
        )
    for name in ("page", "per_page"):
        targets.append(
            Target(
                f"v1.invoice_list.{name}",
                "v1",
                "GET",
                "/v1/invoices",
                name,
                "number",
                query_names=(name,),
                read=True,
            )
        )
    record_fields = {
        "id": "text",
        "account_id": "number",
        "resource_id": "text",
        "resource_name": "text",
        "service": "text",
        "region": "text",
        "start_time": "timestamp",
        "end_time": "timestamp",
        "duration": "number",
        "cost": "number",
    }
    for name, family in record_fields.items():
        targets.append(
            Target(
                f"v1.usage_ingest.{name}",
                "v1",
                "POST",
                "/v1/usage",
                name,
                family,
                (name,),
                base=_usage_record,
            )
        )
    report_text = {"filters.region": "text", "filters.service": "text", "resource_id": "text"}
    report_query = {
        **report_text,
        "region": "text",
        "service": "text",
        "account_id": "number",
        "group_by": "choice",
        "page": "number",
        "per_page": "number",
    }
    for name, family in report_query.items():
        targets.append(
            Target(
                f"v1.usage_report_get.{name}",
                "v1",
                "GET",
                "/v1/usage/report",
                name.removeprefix("filters."),
                family,
                query_names=(name,),
                base_query="start_date=2026-01-01&end_date=2026-01-31",
                read=True,
            )
        )
    targets.append(
        Target(
            "v1.usage_report_get.dates",
            "v1",
            "GET",
            "/v1/usage/report",
            "start_date",
            "date",
            query_names=("start_date", "end_date"),
            read=True,
            also_named=("end_date",),
        )
    )
    report_body = {
        "filters.region": ("filters", "region"),
        "filters.service": ("filters", "service"),
        "resource_id": ("resource_id",),
        "account_id": ("account_id",),
        "group_by": ("group_by",),
        "page": ("page",),
        "per_page": ("per_page",),
    }
    for name, at in report_body.items():
        family = report_query[name]
        targets.append(
            Target(
                f"v1.usage_report_post.{name}",
                "v1",
                "POST",
                "/v1/usage/report",
                at[-1],
                family,
                at,
                base=_report,
                read=True,
                also_named=("filters",) if at[0] == "filters" else (),
            )
        )
    targets.append(
        Target(
            "v1.usage_report_post.group_by_list",
            "v1",
            "POST",
            "/v1/usage/report",
            "group_by",
            "group_by_list",
            ("group_by",),
            base=_report,
            read=True,
        )
    )
    for name in ("start_date", "end_date"):
        targets.append(
            Target(
                f"v1.usage_report_post.{name}",
                "v1",
                "POST",
                "/v1/usage/report",
                name,
                "date",
                (name,),
                base=_report,
                read=True,
                also_named=("start_date", "end_date"),
            )
        )
    return targets


FAMILIES["group_by_list"] = (Value("list-service", '["service"]', None),)

TARGETS: list[Target] = _threescale_targets() + _v1_targets()


def cases(api: str) -> list[tuple[Target, Value]]:
    """Every (parameter, value) pair of one API that can be sent."""
    result = []
    for target in TARGETS:
        if target.api != api:
            continue
        for value in FAMILIES[target.family]:
            if target.query_names and value.query is None:
                continue
            result.append((target, value))
    return result


def case_id(case: tuple[Target, Value]) -> str:
    target, value = case
    return f"{target.id}={value.id}"


# --- building requests -----------------------------------------------------------------------


def _set(data: Any, at: tuple[Any, ...], value: Any) -> None:
    for step in at[:-1]:
        if isinstance(data, dict):
            data = data.setdefault(step, {})
        else:
            data = data[step]
    data[at[-1]] = value


def body_with(base: Any, at: tuple[Any, ...], fragment: str) -> bytes:
    """`base` as JSON, with the raw `fragment` at `at`."""
    data = json.loads(json.dumps(base))
    _set(data, at, MARK)
    return json.dumps(data).replace(json.dumps(MARK), fragment).encode("utf-8")


def query_with(base_query: str, names: tuple[str, ...], fragment: str) -> str:
    parts = [base_query] if base_query else []
    parts += [f"{quote(name, safe='.')}={fragment}" for name in names]
    return "&".join(parts)
