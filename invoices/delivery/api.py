"""`/v1/webhook_endpoints`: provider-wide configuration, managed with a write key for
all accounts (a key limited to one account gets 403, a read key may only read)."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from billing.api.errors import ApiError, ErrorSerializer
from billing.api.fields import StrictSerializer
from billing.api.idempotency import IdempotencyMixin
from billing.api.pagination import LinkHeaderPagination
from billing.api.permissions import HasApiKey, ProviderWideKey, WriteScopeForUnsafe
from billing.api.v1 import V1APIMixin
from invoices.delivery import endpoints, outbox
from invoices.delivery.models import EVENT_TYPES, Notification, WebhookAttempt, WebhookEndpoint
from invoices.exceptions import InvoiceValidationError

_EVENT_CHOICES = ["*", *EVENT_TYPES]


class WebhookEndpointSerializer(serializers.ModelSerializer):
    """A webhook endpoint (its secret is shown only when created or rolled)."""

    events = serializers.ListField(child=serializers.ChoiceField(choices=_EVENT_CHOICES))

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "url",
            "description",
            "events",
            "enabled",
            "disabled_reason",
            "disabled_at",
            "created_at",
            "updated_at",
        ]


class WebhookEndpointWithSecretSerializer(WebhookEndpointSerializer):
    secret = serializers.CharField(help_text="`whsec_` + base64: shown once; store it now.")

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]


class WebhookEndpointCreateSerializer(StrictSerializer):
    url = serializers.URLField(max_length=2048)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=_EVENT_CHOICES), allow_empty=False
    )
    description = serializers.CharField(max_length=255, required=False, allow_blank=True)


class WebhookEndpointUpdateSerializer(StrictSerializer):
    url = serializers.URLField(max_length=2048, required=False)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=_EVENT_CHOICES), allow_empty=False, required=False
    )
    description = serializers.CharField(max_length=255, required=False, allow_blank=True)
    enabled = serializers.BooleanField(required=False)


class WebhookAttemptSerializer(serializers.ModelSerializer):
    # Declared: a model field's inferred range depends on the database (the schema must not).
    response_status = serializers.IntegerField(
        read_only=True, allow_null=True, min_value=100, max_value=599
    )
    duration_ms = serializers.IntegerField(read_only=True, allow_null=True, min_value=0)

    class Meta:
        model = WebhookAttempt
        fields = [
            "id",
            "success",
            "response_status",
            "response_excerpt",
            "error",
            "duration_ms",
            "created_at",
        ]


class WebhookDeliverySerializer(serializers.ModelSerializer):
    """One webhook message to the endpoint and its attempts."""

    webhook_id = serializers.CharField(source="message_id", help_text="The `webhook-id` header.")
    type = serializers.CharField(source="topic")
    attempts = WebhookAttemptSerializer(source="webhook_attempts", many=True)

    class Meta:
        model = Notification
        fields = [
            "id",
            "webhook_id",
            "type",
            "state",
            "attempts",
            "next_attempt_at",
            "sent_at",
            "last_error",
            "created_at",
        ]


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


_ERRORS = {
    401: _error("Missing, unknown, revoked or expired API key."),
    403: _error("Not a key for all accounts, or a read key that tries to write."),
    404: _error("No such webhook endpoint."),
}
_LIST_ERRORS = {**_ERRORS, 400: _error("Invalid query parameters (page, per_page).")}
_WRITE_ERRORS = {
    **_ERRORS,
    400: _error("Invalid fields, named in `details`; nothing is written."),
    413: _error("The body is larger than the limit."),
    415: _error("The body is not JSON."),
}
_POST_ERRORS = {
    **_WRITE_ERRORS,
    409: _error("A request with the same Idempotency-Key is still running."),
    422: _error("The Idempotency-Key was used for another request."),
}
_ID = OpenApiParameter("id", int, OpenApiParameter.PATH, description="The endpoint id.")
_IDEMPOTENCY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="Makes a retried POST safe: the first response is stored for 24 hours and "
    "replayed (with `Idempotent-Replayed: true`) for the same key and body.",
)


@extend_schema_view(
    list=extend_schema(
        summary="List webhook endpoints",
        responses={200: WebhookEndpointSerializer(many=True), **_LIST_ERRORS},
    ),
    create=extend_schema(
        summary="Create a webhook endpoint",
        description="Answers with the signing `secret`, shown this once.",
        request=WebhookEndpointCreateSerializer,
        parameters=[_IDEMPOTENCY],
        responses={201: WebhookEndpointWithSecretSerializer, **_POST_ERRORS},
    ),
    retrieve=extend_schema(
        summary="Get a webhook endpoint",
        parameters=[_ID],
        responses={200: WebhookEndpointSerializer, **_ERRORS},
    ),
    partial_update=extend_schema(
        summary="Change a webhook endpoint",
        description="`enabled: true` turns an endpoint disabled after repeated failures back on.",
        parameters=[_ID],
        request=WebhookEndpointUpdateSerializer,
        responses={200: WebhookEndpointSerializer, **_WRITE_ERRORS},
    ),
    destroy=extend_schema(
        summary="Delete a webhook endpoint",
        parameters=[_ID],
        responses={204: None, **_ERRORS},
    ),
)
class WebhookEndpointViewSet(IdempotencyMixin, V1APIMixin, viewsets.GenericViewSet):
    permission_classes = [HasApiKey, ProviderWideKey, WriteScopeForUnsafe]
    serializer_class = WebhookEndpointSerializer
    pagination_class = LinkHeaderPagination
    lookup_value_regex = "[0-9]+"
    queryset = WebhookEndpoint.objects.all()
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def handle_exception(self, exc: Exception):
        if isinstance(exc, InvoiceValidationError):
            exc = ApiError(
                "Invalid fields.",
                status_code=status.HTTP_400_BAD_REQUEST,
                code="validation_error",
                details={exc.field or "non_field_errors": [exc.message]},
            )
        return super().handle_exception(exc)

    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(WebhookEndpointSerializer(page, many=True).data)

    def create(self, request):
        body = WebhookEndpointCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        endpoint = endpoints.webhook_endpoint_create(**body.validated_data)
        return Response(
            WebhookEndpointWithSecretSerializer(endpoint).data, status=status.HTTP_201_CREATED
        )

    def retrieve(self, request, pk=None):
        return Response(WebhookEndpointSerializer(self.get_object()).data)

    def partial_update(self, request, pk=None):
        body = WebhookEndpointUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        endpoint = endpoints.webhook_endpoint_update(self.get_object(), **body.validated_data)
        return Response(WebhookEndpointSerializer(endpoint).data)

    def destroy(self, request, pk=None):
        endpoints.webhook_endpoint_delete(self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Roll the signing secret",
        description="A new secret, shown this once; later messages are signed with it.",
        request=None,
        parameters=[_ID, _IDEMPOTENCY],
        responses={200: WebhookEndpointWithSecretSerializer, **_POST_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def roll_secret(self, request, pk=None):
        endpoint = endpoints.webhook_endpoint_roll_secret(self.get_object())
        return Response(WebhookEndpointWithSecretSerializer(endpoint).data)

    @extend_schema(
        summary="Send a test event",
        description="Queues a `webhook.test` event to this endpoint; the delivery shows the outcome.",
        request=None,
        parameters=[_ID, _IDEMPOTENCY],
        responses={202: WebhookDeliverySerializer, **_POST_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        notification = endpoints.webhook_endpoint_test(self.get_object())
        return Response(
            WebhookDeliverySerializer(self._deliveries().get(pk=notification.pk)).data,
            status=status.HTTP_202_ACCEPTED,
        )

    def _deliveries(self) -> QuerySet[Notification]:
        return Notification.objects.filter(
            channel=Notification.Channel.WEBHOOK, endpoint_id=self.kwargs["pk"]
        ).prefetch_related(Prefetch("webhook_attempts"))

    @extend_schema(
        summary="List an endpoint's deliveries",
        description="Each webhook message to the endpoint, newest first, with every attempt "
        "(time, response code, body excerpt or error).",
        parameters=[_ID],
        responses={200: WebhookDeliverySerializer(many=True), **_LIST_ERRORS},
    )
    @action(detail=True, methods=["get"])
    def deliveries(self, request, pk=None):
        self.get_object()
        page = self.paginate_queryset(self._deliveries())
        return self.get_paginated_response(WebhookDeliverySerializer(page, many=True).data)

    @extend_schema(
        summary="Replay a delivery",
        description="Sends the message again with the same `webhook-id` (a receiver that has "
        "it can drop it). 409 while it is still queued or being sent.",
        request=None,
        parameters=[
            _ID,
            _IDEMPOTENCY,
            OpenApiParameter(
                "delivery_id", int, OpenApiParameter.PATH, description="The delivery id."
            ),
        ],
        responses={
            202: WebhookDeliverySerializer,
            **_POST_ERRORS,
            409: _error(
                "The delivery is still queued or being sent, or a request with the same "
                "Idempotency-Key is still running."
            ),
        },
    )
    @action(detail=True, methods=["post"], url_path=r"deliveries/(?P<delivery_id>[0-9]+)/replay")
    def replay(self, request, pk=None, delivery_id=None):
        self.get_object()
        notification = self._deliveries().filter(pk=delivery_id).first()
        if notification is None:
            raise ApiError("No such delivery.", status_code=status.HTTP_404_NOT_FOUND)
        if not outbox.notification_resend(notification):
            raise ApiError(
                "The delivery is still queued or being sent.", status_code=status.HTTP_409_CONFLICT
            )
        return Response(
            WebhookDeliverySerializer(self._deliveries().get(pk=notification.pk)).data,
            status=status.HTTP_202_ACCEPTED,
        )
