"""The usage endpoints of /v1: ingestion and the usage report.

Thin views: they read the request, call usage.services / usage.selectors and
shape the answer. Errors follow billing.lib.api_errors.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.permissions import HasApiKey, request_api_key
from accounts.models import Account
from billing.lib.api_errors import ApiError, ErrorSerializer
from billing.lib.api_v1 import V1APIMixin
from billing.lib.idempotency import IdempotencyMixin
from usage import selectors, services
from usage.api.parsers import JsonLinesParser, JsonlParser, OrjsonParser
from usage.exceptions import UsageBatchEmpty, UsageBatchTooLarge, UsageRecordsInvalid


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


_CENTS = Decimal("0.01")
DEFAULT_PER_PAGE = 100
MAX_PER_PAGE = 1000
# Keeps OFFSET within what every database accepts (a 64-bit integer).
MAX_PAGE = 10**9
_TEXT_FILTER_MAX = 255
_REPORT_PARAMETERS = [
    OpenApiParameter("start_date", OpenApiTypes.DATE, required=True, description="Inclusive."),
    OpenApiParameter("end_date", OpenApiTypes.DATE, required=True, description="Inclusive."),
    OpenApiParameter("filters.region", str, description="Also accepted as `region`."),
    OpenApiParameter("filters.service", str, description="Also accepted as `service`."),
    OpenApiParameter("account_id", int),
    OpenApiParameter("resource_id", str),
    OpenApiParameter("group_by", str, enum=["service", "region", "resource", "day"]),
    OpenApiParameter("page", int),
    OpenApiParameter("per_page", int, description="Default 100, at most 1000."),
]


class UsageIngestView(IdempotencyMixin, V1APIMixin, APIView):
    """POST /v1/usage: one record, a JSON array, or JSON Lines."""

    parser_classes = [OrjsonParser, JsonLinesParser, JsonlParser]

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses={
            201: OpenApiTypes.OBJECT,
            200: OpenApiTypes.OBJECT,
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
        responses={200: OpenApiTypes.OBJECT, **_errors(400, 401, 404)},
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
        }
        return self._report(request, raw)

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses={200: OpenApiTypes.OBJECT, **_errors(400, 401, 404, 409, 413, 415, 422)},
    )
    def post(self, request) -> Response:
        body = request.data
        if not isinstance(body, dict):
            raise ApiError("The body must be a JSON object.", code="validation_error")
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
            "page": body.get("page"),
            "per_page": body.get("per_page"),
        }
        return self._report(request, raw)

    def _report(self, request, raw: dict[str, Any]) -> Response:
        query = parse_report_query(raw)
        page, per_page = _page_params(request, raw)
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
    """Trailing zeros dropped, but at least two decimals: 0.500000 -> 0.50 (as in seed 000)."""
    normalized = amount.normalize()
    if normalized.as_tuple().exponent > -2:  # type: ignore[operator]
        return amount.quantize(_CENTS)
    return normalized


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


def _invalid(field: str, message: str) -> ApiError:
    return ApiError(
        "The request has invalid fields; see details.",
        code="validation_error",
        details={field: [message]},
    )


def _date(raw: dict, name: str) -> dt.date:
    value = raw.get(name)
    if value is None or value == "":
        raise _invalid(name, "is required (YYYY-MM-DD)")
    if not isinstance(value, str) or len(value) != 10:
        raise _invalid(name, "must be a date as YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise _invalid(name, f"{value!r} is not a valid date (YYYY-MM-DD)") from None


def _text_filter(raw: dict, name: str) -> str | None:
    value = raw.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool) and name == "resource_id":
        value = str(value)
    if not isinstance(value, str):
        raise _invalid(name, "must be a string")
    if len(value) > _TEXT_FILTER_MAX or "\x00" in value:
        raise _invalid(name, f"must be at most {_TEXT_FILTER_MAX} characters, without NUL")
    return value


def _positive_int(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise _invalid(name, "must be a positive integer")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.isdigit():
        number = int(value)
    else:
        raise _invalid(name, "must be a positive integer")
    if number < 1 or number > 2**63 - 1:
        raise _invalid(name, "must be a positive integer")
    return number


def parse_report_query(raw: dict[str, Any]) -> selectors.UsageReportQuery:
    """Validate a report request (query parameters or body); 400 naming the field."""
    start_date = _date(raw, "start_date")
    end_date = _date(raw, "end_date")
    if end_date < start_date:
        raise _invalid("end_date", "must not be before start_date")
    if (end_date - start_date).days + 1 > selectors.MAX_REPORT_DAYS:
        raise _invalid("end_date", f"the range may cover at most {selectors.MAX_REPORT_DAYS} days")
    group_by = raw.get("group_by")
    if group_by in (None, ""):
        group_by = None
    elif group_by not in selectors.GROUP_BY_FIELDS:
        raise _invalid("group_by", f"must be one of {', '.join(selectors.GROUP_BY_FIELDS)}")
    region = _text_filter(raw, "region")
    service = _text_filter(raw, "service")
    return selectors.UsageReportQuery(
        start_date=start_date,
        end_date=end_date,
        region=region,
        service=service,
        account_id=_positive_int(raw.get("account_id"), "account_id"),
        resource_id=_text_filter(raw, "resource_id"),
        group_by=group_by,
    )


def _page_params(request, raw: dict[str, Any]) -> tuple[int, int]:
    page = _positive_int(request.query_params.get("page", raw.get("page")), "page") or 1
    per_page = (
        _positive_int(request.query_params.get("per_page", raw.get("per_page")), "per_page")
        or DEFAULT_PER_PAGE
    )
    if per_page > MAX_PER_PAGE:
        raise _invalid("per_page", f"must be at most {MAX_PER_PAGE}")
    if page > MAX_PAGE:
        raise _invalid("page", f"must be at most {MAX_PAGE}")
    return page, per_page


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
