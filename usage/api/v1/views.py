"""The usage endpoints of /v1: ingestion and the usage report.

Thin views: they read the request, call usage.services / usage.selectors and
shape the answer. Errors follow billing.api.errors.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Account
from billing.api.errors import ApiError, ErrorSerializer
from billing.api.idempotency import KEY_SCHEMA, IdempotencyMixin
from billing.api.permissions import HasApiKey, request_api_key
from billing.api.v1 import V1APIMixin
from billing.lib.money import as_written
from usage import selectors, services
from usage.api.v1.parsers import JsonLinesParser, JsonlParser, OrjsonParser
from usage.api.v1.serializers import MAX_PAGE, MAX_PER_PAGE, UsageReportParamsSerializer
from usage.exceptions import UsageBatchEmpty, UsageBatchTooLarge, UsageRecordsInvalid
from usage.validation import (
    CLIENT_ID_MAX,
    MAX_BATCH_RECORDS,
    METRIC_MAX,
    REGION_MAX,
    RESOURCE_ID_MAX,
    RESOURCE_NAME_MAX,
    SERVICE_MAX,
)


def _errors(*codes: int) -> dict[int, OpenApiResponse]:
    """The /v1 error answers an endpoint gives, for its schema."""
    reasons = {
        400: "Invalid fields or records, named in `details`; nothing is stored.",
        401: "Missing, unknown, revoked or expired API key.",
        403: "A read key cannot write.",
        404: "No such account (or not visible to this key).",
        409: "A request with the same Idempotency-Key is still running.",
        413: "The body (or the batch) is larger than the limit.",
        415: "The body is not JSON.",
        422: "The Idempotency-Key was used for another request.",
    }
    return {
        code: OpenApiResponse(
            UsageErrorSerializer if code == 400 else ErrorSerializer, description=reasons[code]
        )
        for code in codes
    }


class UsageErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable, machine-readable error code.")
    message = serializers.CharField(help_text="What went wrong, for people.")
    details = serializers.DictField(
        child=serializers.ListField(child=serializers.JSONField()),
        required=False,
        help_text="Each bad field with its reasons; `records` lists each bad record of a "
        'batch as {"index", "field", "message"}.',
    )


class UsageErrorSerializer(serializers.Serializer):
    """A /v1 usage error: the shared shape, with per-record details for batches."""

    error = UsageErrorDetailSerializer()


class UsageRecordSchema(serializers.Serializer):
    """One usage record (documentation only: usage.validation reads the records)."""

    id = serializers.CharField(
        max_length=CLIENT_ID_MAX, help_text="The client's id for the record (deduplicates)."
    )
    account_id = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="Required unless the API key is limited to one account.",
    )
    resource_id = serializers.CharField(required=False, max_length=RESOURCE_ID_MAX)
    resource_name = serializers.CharField(required=False, max_length=RESOURCE_NAME_MAX)
    service = serializers.CharField(required=False, max_length=SERVICE_MAX)
    region = serializers.CharField(required=False, max_length=REGION_MAX)
    start_time = serializers.DateTimeField()
    end_time = serializers.DateTimeField(
        required=False, help_text="Required with a cost; not before start_time."
    )
    duration = serializers.IntegerField(
        required=False, min_value=0, help_text="Seconds; defaults to end_time - start_time."
    )
    cost = serializers.DecimalField(
        max_digits=18,
        decimal_places=6,
        min_value=Decimal(0),
        required=False,
        help_text="A priced record's cost (a number or a numeric string).",
    )
    metric = serializers.CharField(
        required=False,
        max_length=METRIC_MAX,
        help_text="A metered record: the metric code (with `quantity`, and no `cost`).",
    )
    quantity = serializers.DecimalField(
        max_digits=18, decimal_places=4, min_value=Decimal(0), required=False
    )


class UsageIngestResultSerializer(serializers.Serializer):
    received = serializers.IntegerField()
    stored = serializers.IntegerField()
    duplicates = serializers.IntegerField(help_text="Records already stored (same account and id).")


class UsageRowSerializer(serializers.Serializer):
    """A report row: a record, or a group (its key, `records`, `duration`, `cost`)."""

    id = serializers.CharField(required=False)
    account_id = serializers.IntegerField(required=False)
    resource_id = serializers.CharField(required=False)
    resource_name = serializers.CharField(required=False)
    service = serializers.CharField(required=False)
    region = serializers.CharField(required=False)
    metric = serializers.CharField(required=False)
    quantity = serializers.DecimalField(
        max_digits=18, decimal_places=4, coerce_to_string=False, required=False
    )
    start_time = serializers.DateTimeField(required=False)
    end_time = serializers.DateTimeField(required=False)
    day = serializers.DateField(required=False)
    records = serializers.IntegerField(required=False)
    duration = serializers.IntegerField(required=False)
    cost = serializers.DecimalField(
        max_digits=24, decimal_places=6, coerce_to_string=False, allow_null=True
    )


class UsageFiltersSerializer(serializers.Serializer):
    region = serializers.CharField(required=False)
    service = serializers.CharField(required=False)


class UsageReportSerializer(serializers.Serializer):
    start_date = serializers.DateField()
    end_date = serializers.DateField()
    filters = UsageFiltersSerializer()
    account_id = serializers.IntegerField(required=False)
    resource_id = serializers.CharField(required=False)
    group_by = serializers.ChoiceField(
        choices=["service", "region", "resource", "day"], required=False
    )
    usage = UsageRowSerializer(many=True)
    total_cost = serializers.DecimalField(max_digits=24, decimal_places=6, coerce_to_string=False)


class UsageReportRequestSerializer(serializers.Serializer):
    start_date = serializers.DateField(help_text="Inclusive.")
    end_date = serializers.DateField(help_text="Inclusive.")
    filters = UsageFiltersSerializer(required=False)
    account_id = serializers.IntegerField(required=False, min_value=1)
    resource_id = serializers.CharField(required=False)
    group_by = serializers.ChoiceField(
        choices=["service", "region", "resource", "day"], required=False
    )
    page = serializers.IntegerField(required=False, min_value=1, max_value=MAX_PAGE)
    per_page = serializers.IntegerField(required=False, min_value=1, max_value=MAX_PER_PAGE)


# The body as JSON: one record or an array of them. JSON Lines
# (`application/x-ndjson`, also `application/jsonl`) is read too and described
# in the operation's text: a schema listing it beside an array body makes
# openapi-python-client generate a function that cannot send either (it tests
# `isinstance(body, list[...])`, which Python refuses).
_USAGE_BODY = {
    "application/json": PolymorphicProxySerializer(
        component_name="UsageIngest",
        serializers=[UsageRecordSchema, UsageRecordSchema(many=True)],
        resource_type_field_name=None,
        many=False,
    ),
}

_IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    KEY_SCHEMA,
    OpenApiParameter.HEADER,
    required=False,
    description="Makes a retried POST safe: the first response is stored for 24 hours and "
    "replayed for the same key and body.",
)
_REPORT_PARAMETERS = [
    OpenApiParameter("start_date", OpenApiTypes.DATE, required=True, description="Inclusive."),
    OpenApiParameter("end_date", OpenApiTypes.DATE, required=True, description="Inclusive."),
    OpenApiParameter("filters.region", str, description="Also accepted as `region`."),
    OpenApiParameter("filters.service", str, description="Also accepted as `service`."),
    OpenApiParameter("account_id", {"type": "integer", "minimum": 1}),
    OpenApiParameter("resource_id", str),
    OpenApiParameter("group_by", str, enum=["service", "region", "resource", "day"]),
    OpenApiParameter("page", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}),
    OpenApiParameter(
        "per_page",
        {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE},
        description=f"Default 100, at most {MAX_PER_PAGE}.",
    ),
]


class UsageIngestView(IdempotencyMixin, V1APIMixin, APIView):
    """POST /v1/usage: one record, a JSON array, or JSON Lines."""

    parser_classes = [OrjsonParser, JsonLinesParser, JsonlParser]

    @extend_schema(
        description=(
            "One record (a JSON object), an array of records (at most "
            f"{MAX_BATCH_RECORDS}), or JSON Lines: `Content-Type: application/x-ndjson` "
            "(or `application/jsonl`), one UsageRecordSchema object per line. The batch is "
            "stored whole or not at all; a record already stored (same account and id) counts "
            "as a duplicate."
        ),
        request=_USAGE_BODY,
        parameters=[_IDEMPOTENCY_HEADER],
        responses={
            201: OpenApiResponse(UsageIngestResultSerializer, description="Records stored."),
            200: OpenApiResponse(
                UsageIngestResultSerializer, description="Every record was a duplicate."
            ),
            **_errors(400, 401, 403, 409, 413, 415, 422),
        },
    )
    def post(self, request) -> Response:
        data = request.data
        if isinstance(data, list):
            records = data
        elif isinstance(data, dict) and data:
            records = [data]
        elif isinstance(data, dict) or data is None:
            records = []
        else:
            raise ApiError("The body must be a JSON object (one record) or an array of records.")
        key = request_api_key(request)
        try:
            result = services.usage_ingest(
                records=records, account_id=key.account_id if key else None
            )
        except UsageRecordsInvalid as exc:
            raise ApiError(
                exc.message, code="validation_error", details={"records": exc.errors}
            ) from None
        except UsageBatchTooLarge as exc:
            raise ApiError(
                exc.message, status_code=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
            ) from None
        except UsageBatchEmpty as exc:
            raise ApiError(
                exc.message, code="validation_error", details={"records": [exc.message]}
            ) from None
        code = status.HTTP_201_CREATED if result.stored else status.HTTP_200_OK
        return Response(result.as_dict(), status=code)


class UsageReportView(IdempotencyMixin, V1APIMixin, APIView):
    """GET or POST /v1/usage/report: the seed's report, raw or grouped, paginated."""

    # A report is a read: a read-only key may ask for it with POST too.
    permission_classes = [HasApiKey]

    @extend_schema(
        parameters=_REPORT_PARAMETERS,
        responses={200: UsageReportSerializer, **_errors(400, 401, 404)},
    )
    def get(self, request) -> Response:
        params = request.query_params
        raw = {
            "start_date": params.get("start_date"),
            "end_date": params.get("end_date"),
            "region": params.get("filters.region", params.get("region")),
            "service": params.get("filters.service", params.get("service")),
            "account_id": params.get("account_id"),
            "resource_id": params.get("resource_id"),
            "group_by": params.get("group_by"),
            "page": params.get("page"),
            "per_page": params.get("per_page"),
        }
        return self._report(request, raw)

    @extend_schema(
        request=UsageReportRequestSerializer,
        parameters=[_IDEMPOTENCY_HEADER],
        responses={200: UsageReportSerializer, **_errors(400, 401, 404, 409, 413, 415, 422)},
    )
    def post(self, request) -> Response:
        body = request.data
        if not isinstance(body, dict):
            raise ApiError("The body must be a JSON object.", code="validation_error")
        nulls = sorted(name for name, value in body.items() if value is None)
        if nulls:
            # A null is not "not given": the schema refuses it, and so does the server.
            raise ApiError(
                "The request has invalid fields; see details.",
                code="validation_error",
                details={name: ["may not be null"] for name in nulls},
            )
        filters = body.get("filters") or {}
        if not isinstance(filters, dict):
            raise ApiError(
                "The request has invalid fields; see details.",
                code="validation_error",
                details={"filters": ["must be an object with region and/or service"]},
            )
        raw = {
            "start_date": body.get("start_date"),
            "end_date": body.get("end_date"),
            "region": filters.get("region"),
            "service": filters.get("service"),
            "account_id": body.get("account_id"),
            "resource_id": body.get("resource_id"),
            "group_by": body.get("group_by"),
            # Paging in the query string wins over the body (the Link header's URLs).
            "page": request.query_params.get("page", body.get("page")),
            "per_page": request.query_params.get("per_page", body.get("per_page")),
        }
        return self._report(request, raw)

    def _report(self, request, raw: dict[str, Any]) -> Response:
        params = UsageReportParamsSerializer(
            data={name: value for name, value in raw.items() if value is not None}
        )
        params.is_valid(raise_exception=True)
        query = params.query()
        page, per_page = params.paging()
        key = request_api_key(request)
        account_ids = None
        if key is not None and key.account_id is not None:
            if query.account_id is not None and query.account_id != key.account_id:
                raise ApiError("Account not found.", status_code=status.HTTP_404_NOT_FOUND)
            account_ids = [key.account_id]
        elif query.account_id is not None:
            if not Account.objects.filter(pk=query.account_id).exists():
                raise ApiError("Account not found.", status_code=status.HTTP_404_NOT_FOUND)

        qs = selectors.usage_report_queryset(query, account_ids=account_ids)
        rows_qs = selectors.usage_report_rows(qs, group_by=query.group_by)
        offset = (page - 1) * per_page
        rows = [_row(row, query.group_by) for row in rows_qs[offset : offset + per_page]]
        # A page that is not full (an account's month usually fits in one) tells
        # the total itself: the COUNT is only needed when more rows may follow.
        if 0 < len(rows) < per_page or (offset == 0 and not rows):
            total_count = offset + len(rows)
        else:
            total_count = rows_qs.count()
        body: dict[str, Any] = {
            "start_date": query.start_date.isoformat(),
            "end_date": query.end_date.isoformat(),
            "filters": query.filters,
        }
        for name in ("account_id", "resource_id", "group_by"):
            value = getattr(query, name)
            if value is not None:
                body[name] = value
        body["usage"] = rows
        body["total_cost"] = money_number(selectors.usage_report_total(qs))
        response = Response(body)
        response["X-Total-Count"] = str(total_count)
        links = _links(request, page, per_page, total_count)
        if links:
            response["Link"] = links
        return response


def money_number(amount: Decimal) -> Decimal:
    """Trailing zeros dropped, but at least two decimals: 0.500000 -> 0.50."""
    return as_written(amount, min_places=2)


def _row(row: dict, group_by: str | None) -> dict:
    if group_by is None:
        if row["metric"] is not None:
            # A metered record: priced by the plan at billing, so it has no cost of its own.
            return {
                "id": row["client_id"],
                "account_id": row["account_id"],
                "resource_id": row["resource_id"],
                "metric": row["metric"],
                "quantity": row["quantity"],
                "start_time": row["start_time"],
                "cost": None,
            }
        return {
            "id": row["client_id"],
            "account_id": row["account_id"],
            "resource_id": row["resource_id"],
            "resource_name": row["resource_name"],
            "service": row["service"],
            "region": row["region"],
            "start_time": row["start_time"],
            "end_time": row["end_time"],
            "duration": row["duration"],
            "cost": money_number(row["cost"]),
        }
    key = selectors.GROUP_BY_FIELDS[group_by]
    value = row[key]
    if isinstance(value, dt.date):
        value = value.isoformat()
    return {
        key: value,
        "records": row["records"],
        "duration": row["seconds"] or 0,
        "cost": money_number(row["amount"] or Decimal(0)),
    }


def _links(request, page: int, per_page: int, total: int) -> str:
    """RFC 8288 Link header: first, prev, next, last."""
    last = max(1, -(-total // per_page))
    params = request.query_params.copy()
    base = request.build_absolute_uri(request.path)

    def url(number: int) -> str:
        params["page"] = str(number)
        params["per_page"] = str(per_page)
        return f"{base}?{params.urlencode()}"

    links = [f'<{url(1)}>; rel="first"']
    if page > 1:
        links.append(f'<{url(min(page - 1, last))}>; rel="prev"')
    if page < last:
        links.append(f'<{url(page + 1)}>; rel="next"')
    links.append(f'<{url(last)}>; rel="last"')
    return ", ".join(links)
