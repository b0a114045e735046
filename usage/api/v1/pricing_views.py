"""/v1 metrics, plans, subscriptions and the upcoming invoice.

Thin views: serializers check the shape of a request, usage.subscriptions
makes the change, and the domain's errors become /v1 errors (a bad value
400 naming the field, a plan in use or an overlapping subscription 409).
Metrics and plans are the provider's catalogue: any key reads them, only a
write key not limited to one account changes them.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.selectors import account_visible_to
from billing.api.errors import ApiError, ErrorSerializer
from billing.api.idempotency import KEY_SCHEMA, IdempotencyMixin
from billing.api.pagination import LinkHeaderPagination
from billing.api.permissions import (
    HasApiKey,
    ProviderWideKey,
    WriteScopeForUnsafe,
    request_api_key,
)
from billing.api.v1 import V1APIMixin
from billing.lib import months
from invoices.api.v1.serializers import InvoiceSerializer
from usage import selectors, subscriptions
from usage.api.v1.pricing_serializers import (
    CancelSerializer,
    ChangePlanSerializer,
    MetricCreateSerializer,
    MetricSerializer,
    PlanCreateSerializer,
    PlanSerializer,
    PlanUpdateSerializer,
    SubscriptionCreateSerializer,
    SubscriptionSerializer,
)
from usage.exceptions import PlanImmutable, PricingError, PricingValidationError
from usage.models import Plan, Subscription
from usage.upcoming import upcoming_invoice

CODE_REGEX = "[a-z0-9][a-z0-9_.-]{0,63}"
MAX_ID = 2**63 - 1


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


_READ_ERRORS = {401: _error("Missing, unknown, revoked or expired API key.")}
_NOT_FOUND = {404: _error("Not found (or not visible to this key).")}
_WRITE_ERRORS = {
    **_READ_ERRORS,
    400: _error("Invalid fields, named in `details`; nothing is written."),
    403: _error("A read key cannot write; the catalogue needs a key for all accounts."),
    409: _error(
        "The change conflicts with the data (a plan in use, overlapping subscriptions), or a "
        "request with the same Idempotency-Key is still running."
    ),
    413: _error("The body is larger than the limit."),
    415: _error("The body is not JSON."),
    422: _error("The Idempotency-Key was used for another request."),
}
_LIST_ERRORS = {**_READ_ERRORS, 400: _error("A bad page, per_page or filter, named in `details`.")}
_IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    KEY_SCHEMA,
    OpenApiParameter.HEADER,
    required=False,
    description="Makes a retried POST safe: the first response is stored for 24 hours and "
    "replayed for the same key and body.",
)


def _invalid(field: str, message: str) -> ApiError:
    return ApiError(
        "The request has invalid fields; see details.",
        code="validation_error",
        details={field: [message]},
    )


class _PricingViewSet(IdempotencyMixin, V1APIMixin, viewsets.GenericViewSet):
    pagination_class = LinkHeaderPagination
    filter_backends: list = []

    def handle_exception(self, exc: Exception):
        if isinstance(exc, PricingValidationError):
            exc = _invalid(exc.field, exc.message)
        elif isinstance(exc, PlanImmutable):
            exc = ApiError(exc.message, status_code=status.HTTP_409_CONFLICT, code="plan_in_use")
        elif isinstance(exc, PricingError):
            exc = ApiError(exc.message, status_code=status.HTTP_409_CONFLICT, code="conflict")
        return super().handle_exception(exc)

    def _valid(self, serializer_class, **kwargs) -> dict:
        serializer = serializer_class(data=self.request.data, **kwargs)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    def _list(self, queryset, serializer_class) -> Response:
        page = self.paginate_queryset(queryset)
        assert page is not None  # the view sets a pagination class
        return self.get_paginated_response([serializer_class(item).data for item in page])


class _CatalogueViewSet(_PricingViewSet):
    lookup_field = "code"
    lookup_value_regex = CODE_REGEX

    def get_permissions(self):
        permissions = list(super().get_permissions())
        if self.request.method not in ("GET", "HEAD", "OPTIONS"):
            permissions.append(ProviderWideKey())
        return permissions


@extend_schema_view(
    list=extend_schema(summary="List metrics", responses={200: MetricSerializer(many=True), **_LIST_ERRORS}),
    retrieve=extend_schema(summary="Get a metric", responses={200: MetricSerializer, **_READ_ERRORS, **_NOT_FOUND}),
    create=extend_schema(
        summary="Create a metric",
        request=MetricCreateSerializer,
        responses={201: MetricSerializer, **_WRITE_ERRORS},
        parameters=[_IDEMPOTENCY_HEADER],
    ),
)  # fmt: skip
class MetricViewSet(_CatalogueViewSet):
    serializer_class = MetricSerializer

    def get_queryset(self) -> QuerySet:
        return selectors.metric_list()

    def list(self, request) -> Response:
        return self._list(self.get_queryset(), MetricSerializer)

    def retrieve(self, request, code: str) -> Response:
        return Response(MetricSerializer(self.get_object()).data)

    def create(self, request) -> Response:
        data = self._valid(MetricCreateSerializer)
        metric = subscriptions.metric_create(**data)
        return Response(MetricSerializer(metric).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    list=extend_schema(summary="List plans", responses={200: PlanSerializer(many=True), **_LIST_ERRORS}),
    retrieve=extend_schema(summary="Get a plan", responses={200: PlanSerializer, **_READ_ERRORS, **_NOT_FOUND}),
    create=extend_schema(
        summary="Create a plan with its charges",
        request=PlanCreateSerializer,
        responses={201: PlanSerializer, **_WRITE_ERRORS},
        parameters=[_IDEMPOTENCY_HEADER],
    ),
    partial_update=extend_schema(
        summary="Change a plan nobody is subscribed to",
        description="`charges`, when given, replaces all the plan's charges. A plan with "
        "subscriptions answers 409 `plan_in_use`: publish a new plan and change_plan to it.",
        request=PlanUpdateSerializer,
        responses={200: PlanSerializer, **_WRITE_ERRORS, **_NOT_FOUND},
    ),
    destroy=extend_schema(
        summary="Delete a plan nobody is subscribed to",
        responses={204: None, **_WRITE_ERRORS, **_NOT_FOUND},
    ),
)  # fmt: skip
class PlanViewSet(_CatalogueViewSet):
    serializer_class = PlanSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[Plan]:
        return selectors.plan_list()

    def _respond(self, plan: Plan, code: int = status.HTTP_200_OK) -> Response:
        return Response(PlanSerializer(self.get_queryset().get(pk=plan.pk)).data, status=code)

    def list(self, request) -> Response:
        return self._list(self.get_queryset(), PlanSerializer)

    def retrieve(self, request, code: str) -> Response:
        return Response(PlanSerializer(self.get_object()).data)

    def create(self, request) -> Response:
        data = self._valid(PlanCreateSerializer)
        plan = subscriptions.plan_create(**data)
        return self._respond(plan, status.HTTP_201_CREATED)

    def partial_update(self, request, code: str) -> Response:
        plan = self.get_object()
        data = self._valid(PlanUpdateSerializer, partial=True)
        return self._respond(subscriptions.plan_update(plan, **data))

    def destroy(self, request, code: str) -> Response:
        subscriptions.plan_delete(self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


_SUBSCRIPTION_ID = OpenApiParameter("id", int, OpenApiParameter.PATH)
_CUSTOMER_FILTER = OpenApiParameter("customer_id", int, description="Only this customer's.")


@extend_schema_view(
    list=extend_schema(
        summary="List subscriptions",
        parameters=[_CUSTOMER_FILTER],
        responses={200: SubscriptionSerializer(many=True), **_LIST_ERRORS},
    ),
    retrieve=extend_schema(
        summary="Get a subscription",
        parameters=[_SUBSCRIPTION_ID],
        responses={200: SubscriptionSerializer, **_READ_ERRORS, **_NOT_FOUND},
    ),
    create=extend_schema(
        summary="Subscribe a customer to a plan",
        description="The customer has at most one live subscription; the trial (the plan's "
        "`trial_days`) starts on `start_date`.",
        request=SubscriptionCreateSerializer,
        responses={201: SubscriptionSerializer, **_WRITE_ERRORS},
        parameters=[_IDEMPOTENCY_HEADER],
    ),
)  # fmt: skip
class SubscriptionViewSet(_PricingViewSet):
    serializer_class = SubscriptionSerializer
    lookup_value_regex = "[0-9]{1,18}"

    def get_queryset(self) -> QuerySet[Subscription]:
        return selectors.subscription_list(request_api_key(self.request))

    def list(self, request) -> Response:
        queryset = self.get_queryset()
        customer = request.query_params.get("customer_id")
        if customer not in (None, ""):
            if not customer.isdigit() or not 0 < int(customer) <= MAX_ID:
                raise _invalid("customer_id", "must be a positive integer")
            queryset = queryset.filter(account_id=int(customer))
        return self._list(queryset, SubscriptionSerializer)

    def retrieve(self, request, pk: str) -> Response:
        return Response(SubscriptionSerializer(self.get_object()).data)

    def _plan(self, code: str) -> Plan:
        plan = Plan.objects.filter(code=code).first()
        if plan is None:
            raise _invalid("plan", f"no plan {code!r}")
        return plan

    def create(self, request) -> Response:
        data = self._valid(SubscriptionCreateSerializer)
        key = request_api_key(request)
        account = account_visible_to(key).filter(pk=data["customer_id"]).first()
        if account is None:
            raise _invalid("customer_id", "does not exist")
        plan = self._plan(data["plan"])
        subscription = subscriptions.subscription_create(
            account=account, plan=plan, start_date=data["start_date"]
        )
        return Response(SubscriptionSerializer(subscription).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Move a subscription to another plan from a day",
        description="The subscription ends the day before `date`; a new one on `plan` starts "
        "on `date` (the answer). Each day of the month is billed once, on the plan of that day.",
        request=ChangePlanSerializer,
        parameters=[_SUBSCRIPTION_ID, _IDEMPOTENCY_HEADER],
        responses={201: SubscriptionSerializer, **_WRITE_ERRORS, **_NOT_FOUND},
    )
    @action(detail=True, methods=["post"])
    def change_plan(self, request, pk: str) -> Response:
        subscription = self.get_object()
        data = self._valid(ChangePlanSerializer)
        new = subscriptions.subscription_change_plan(
            subscription=subscription, plan=self._plan(data["plan"]), date=data["date"]
        )
        return Response(SubscriptionSerializer(new).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Cancel a subscription from a day",
        description="`date` is the first day without the subscription: the day before is "
        "the last one billed.",
        request=CancelSerializer,
        parameters=[_SUBSCRIPTION_ID, _IDEMPOTENCY_HEADER],
        responses={200: SubscriptionSerializer, **_WRITE_ERRORS, **_NOT_FOUND},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk: str) -> Response:
        subscription = self.get_object()
        data = self._valid(CancelSerializer)
        ended = subscriptions.subscription_cancel(subscription=subscription, date=data["date"])
        return Response(SubscriptionSerializer(ended).data)


class UpcomingInvoiceView(V1APIMixin, APIView):
    """GET /v1/customers/{id}/upcoming_invoice: what the billing run would bill, unsaved."""

    permission_classes = [HasApiKey, WriteScopeForUnsafe]

    @extend_schema(
        summary="Preview the invoice of a month",
        description="The invoice the monthly billing run would make for the month from the "
        "usage so far (plan fees, setup fees, rated and pre-rated usage), in the invoice "
        "representation, with `id` and line ids null. Nothing is saved.",
        parameters=[
            OpenApiParameter("id", int, OpenApiParameter.PATH, description="The customer id."),
            OpenApiParameter(
                "month", OpenApiTypes.STR, description="YYYY-MM (default: the current month)."
            ),
        ],
        responses={200: InvoiceSerializer, **_READ_ERRORS, 400: _WRITE_ERRORS[400], **_NOT_FOUND},
    )
    def get(self, request, pk: str) -> Response:
        raw = request.query_params.get("month")
        if raw in (None, ""):
            month = months.month_start(timezone.now().date())
        else:
            try:
                month = months.parse_month(raw)
            except ValueError as exc:
                raise _invalid("month", str(exc)) from None
            if month < months.FIRST_BILLABLE_MONTH or month.year > 2999:
                raise _invalid("month", "must be between 2000-01 and 2999-12")
        number = int(pk)
        account = None
        if number <= MAX_ID:
            account = account_visible_to(request_api_key(request)).filter(pk=number).first()
        if account is None:
            raise ApiError("Customer not found.", status_code=status.HTTP_404_NOT_FOUND)
        return Response(upcoming_invoice(account, month, now=timezone.now()))
