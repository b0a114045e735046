"""3scale's Account Management API, the part a billing client needs:
signup, list, read, update and (soft) delete of buyer accounts."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
)
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from accounts import services
from accounts.api.threescale.representations import (
    ADDRESS_FIELDS,
    account_json,
    account_xml,
    accounts_json,
    accounts_xml,
)
from accounts.models import Account
from accounts.selectors import account_find_by_email, account_visible_to
from billing.api.pagination import page_request
from billing.api.permissions import HasApiKey, ProviderWideKey, WriteScopeForUnsafe
from billing.api.threescale import schema as s
from billing.api.threescale.base import ThreeScaleViewSet
from billing.api.threescale.errors import Unprocessable
from billing.api.threescale.params import (
    decimal,
    list_values,
    param,
    path_id,
    text,
)
from billing.api.threescale.renderers import Document, wants_xml
from billing.api.threescale.representations import Links, paginate

DEFAULT_PER_PAGE = 500
MAX_PER_PAGE = 500
TEXT_FIELDS = (
    "org_name",
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
    "country_code",
    "tax_exempt_reason",
)


class ThreeScaleAccountSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    state = serializers.ChoiceField(choices=Account.State.values)
    org_name = serializers.CharField()
    billing_email = serializers.EmailField(required=False)
    vat_code = serializers.CharField(required=False)
    vat_rate = serializers.DecimalField(
        max_digits=5, decimal_places=2, coerce_to_string=False, allow_null=True
    )
    currency = serializers.CharField()
    payment_terms_days = serializers.IntegerField()
    payment_method = serializers.ChoiceField(choices=Account.PaymentMethod.values)
    credit_card_stored = serializers.BooleanField()
    credit_card_partial_number = serializers.CharField(required=False)
    billing_address = serializers.DictField(
        child=serializers.CharField(),
        help_text="company, address1, address2, city, state, zip, country, phone (blanks omitted).",
    )
    country_code = serializers.CharField(
        required=False,
        help_text="ISO 3166-1 alpha-2; decides the VAT treatment. Omitted when unset.",
    )
    is_business = serializers.BooleanField(
        required=False, help_text="Only when false: the buyer is a consumer."
    )
    tax_exempt = serializers.BooleanField(required=False, help_text="Only when true.")
    tax_exempt_reason = serializers.CharField(required=False)
    links = s.ThreeScaleLinkSerializer(many=True)


class ThreeScaleAccountEnvelopeSerializer(serializers.Serializer):
    account = ThreeScaleAccountSerializer()


@extend_schema_serializer(many=False)  # one object, {"accounts": [...]}, not an array
class ThreeScaleAccountListSerializer(serializers.Serializer):
    accounts = ThreeScaleAccountEnvelopeSerializer(many=True)
    metadata = s.ThreeScaleMetadataSerializer(
        required=False, help_text="Only when there is more than one page."
    )


class ThreeScaleAccountWriteSerializer(serializers.Serializer):
    org_name = serializers.CharField(help_text="Required on signup.")
    username = serializers.CharField(
        required=False, help_text="Accepted for 3scale compatibility; buyers have no users here."
    )
    email = serializers.EmailField(required=False, help_text="Billing e-mail (signup).")
    billing_email = serializers.EmailField(required=False)
    vat_code = serializers.CharField(required=False)
    vat_rate = serializers.DecimalField(max_digits=5, decimal_places=2, required=False)
    currency = serializers.CharField(required=False)
    payment_terms_days = serializers.IntegerField(required=False)
    payment_method = serializers.ChoiceField(choices=Account.PaymentMethod.values, required=False)
    address_line1 = serializers.CharField(required=False)
    address_line2 = serializers.CharField(required=False)
    city = serializers.CharField(required=False)
    address_state = serializers.CharField(required=False)
    zip = serializers.CharField(required=False)
    country = serializers.CharField(required=False)
    phone = serializers.CharField(required=False)
    country_code = serializers.CharField(
        required=False, help_text="ISO 3166-1 alpha-2 (ES, DE, US); decides the VAT treatment."
    )
    is_business = serializers.BooleanField(required=False)
    tax_exempt = serializers.BooleanField(required=False)
    tax_exempt_reason = serializers.CharField(
        required=False, help_text="Required with tax_exempt; printed on the invoices."
    )
    billing_address = serializers.DictField(
        child=serializers.CharField(),
        required=False,
        help_text="3scale's address keys: address1, address2, city, state, zip, country, phone.",
    )


def account_fields(request) -> dict[str, Any]:
    """The account attributes in the request (flat, `account[...]`, or `billing_address[...]`)."""

    def get(name: str, wrapper: str = "account"):
        return param(request, name, wrapper=wrapper)

    fields: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        value = get(name)
        if value is not None:
            fields[name] = (text(value, name) or "").strip()
    for key, name in ADDRESS_FIELDS:
        value = get(key, "billing_address")
        if value is None:
            nested = get("billing_address")
            value = nested.get(key) if isinstance(nested, dict) else None
        if value is not None and name not in fields:
            fields[name] = (text(value, f"billing_address[{key}]") or "").strip()
    email = get("email")
    if email is not None and "billing_email" not in fields:
        fields["billing_email"] = (text(email, "email") or "").strip()
    if "currency" in fields:
        fields["currency"] = fields["currency"].upper()
    if "country_code" in fields:
        fields["country_code"] = fields["country_code"].upper()
    for flag in ("is_business", "tax_exempt"):
        value = get(flag)
        if value is not None:
            fields[flag] = _flag(value, flag)
    vat_rate = get("vat_rate")
    if vat_rate is not None:
        fields["vat_rate"] = None if vat_rate == "" else decimal(vat_rate, "vat_rate")
    terms = get("payment_terms_days")
    if terms is not None:
        # Empty: back to the default payment terms.
        fields["payment_terms_days"] = (
            None if terms == "" else _whole_number(terms, "payment_terms_days")
        )
    return fields


def _flag(value: Any, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).strip().lower() in ("true", "1"):
        return True
    if str(value).strip().lower() in ("false", "0"):
        return False
    raise Unprocessable.on(field, "must be true or false")


def _whole_number(value: Any, field: str) -> int:
    number = decimal(value, field)
    if number != number.to_integral_value() or abs(number) > 10**6:
        raise Unprocessable.on(field, "must be a whole number of days")
    return int(number)


def _account_document(request, account: Account) -> Document:
    if wants_xml(request):
        return Document(xml=account_xml(account), last_modified=account.updated_at)
    return Document(
        json={"account": account_json(account, Links(request))},
        last_modified=account.updated_at,
    )


ACCOUNT_ID = OpenApiParameter("id", int, OpenApiParameter.PATH, description="Account id.")


@extend_schema(tags=["3scale: accounts"])
class AccountViewSet(ThreeScaleViewSet):
    """Signup and list need a key for every account; a key limited to one account
    may read that account only."""

    def get_permissions(self):
        if self.action in ("retrieve",):
            return [HasApiKey()]
        return [HasApiKey(), WriteScopeForUnsafe(), ProviderWideKey()]

    def get_account(self, pk) -> Account:
        account_id = path_id(pk)
        account = (
            account_visible_to(self.api_key).filter(pk=account_id).first() if account_id else None
        )
        if account is None:
            raise NotFound()
        return account

    @extend_schema(
        summary="Signup Express (create an account)",
        request=ThreeScaleAccountWriteSerializer,
        responses=s.responses(201, ThreeScaleAccountEnvelopeSerializer, errors=(403, 422)),
    )
    def signup(self, request, format=None):
        """Create a buyer account (`org_name` is required)."""
        fields = account_fields(request)
        if not fields.get("org_name"):
            raise Unprocessable.on("org_name", "can't be blank")
        account = services.account_create(**fields)
        return Response(
            _account_document(request, account),
            status=201,
            headers={"Location": request.build_absolute_uri(f"/admin/api/accounts/{account.pk}")},
        )

    @extend_schema(
        summary="Account List",
        parameters=[
            OpenApiParameter("state", str, description="active or suspended; comma-separated."),
            OpenApiParameter("page", int, description="Defaults to 1."),
            OpenApiParameter("per_page", int, description="Default and max is 500."),
        ],
        responses=s.responses(200, ThreeScaleAccountListSerializer, errors=(403,)),
    )
    def list(self, request, format=None):
        """Accounts that are not deleted, by id (as 3scale lists them)."""
        qs = account_visible_to(self.api_key).order_by("id")
        states = list_values(request.query_params, "state")
        if states:
            # Only real states reach the database (a NUL character would make it raise).
            qs = qs.filter(state__in=[state for state in states if state in Account.State.values])
        page = page_request(
            request.query_params, default_per_page=DEFAULT_PER_PAGE, max_per_page=MAX_PER_PAGE
        )
        accounts, pagination = paginate(qs, page)
        if wants_xml(request):
            return Response(
                Document(xml=accounts_xml([account_xml(a) for a in accounts], pagination))
            )
        links = Links(request)
        items = [account_json(account, links) for account in accounts]
        return Response(Document(json=accounts_json(items, pagination)))

    @extend_schema(
        summary="Account Find",
        parameters=[
            OpenApiParameter("email", str, description="The account's billing e-mail (any case)."),
            OpenApiParameter(
                "username",
                str,
                description="Accepted as 3scale's; accounts here have no users, so only "
                "`email` finds one.",
            ),
        ],
        responses=s.responses(200, ThreeScaleAccountEnvelopeSerializer),
    )
    def find(self, request, format=None):
        """The account with this billing e-mail, or 404."""
        raw = request.query_params.get("email")
        try:
            email = text(raw, "email") or ""
        except Unprocessable:
            email = ""
        account = account_find_by_email(self.api_key, email.strip())
        if account is None:
            raise NotFound()
        return Response(_account_document(request, account))

    @extend_schema(
        summary="Account Read",
        parameters=[ACCOUNT_ID],
        responses=s.responses(200, ThreeScaleAccountEnvelopeSerializer),
    )
    def retrieve(self, request, pk=None, format=None):
        """One account."""
        return Response(_account_document(request, self.get_account(pk)))

    @extend_schema(
        summary="Account Update",
        parameters=[ACCOUNT_ID],
        request=ThreeScaleAccountWriteSerializer,
        responses=s.responses(200, ThreeScaleAccountEnvelopeSerializer, errors=(403, 404, 422)),
    )
    def update(self, request, pk=None, format=None):
        """Change the account's name, billing e-mail, address, VAT and terms."""
        account = self.get_account(pk)
        fields = account_fields(request)
        if "org_name" in fields and not fields["org_name"]:
            raise Unprocessable.on("org_name", "can't be blank")
        if fields:
            account = services.account_update(account=account, **fields)
        return Response(_account_document(request, account))

    @extend_schema(
        summary="Account Update (PATCH)",
        parameters=[ACCOUNT_ID],
        request=ThreeScaleAccountWriteSerializer,
        responses=s.responses(200, ThreeScaleAccountEnvelopeSerializer, errors=(403, 404, 422)),
    )
    def partial_update(self, request, pk=None, format=None):
        """Same as PUT."""
        return self.update(request, pk=pk, format=format)

    @extend_schema(
        summary="Account Delete",
        description="A soft delete: the account then reads as 404; its invoices stay.",
        parameters=[ACCOUNT_ID],
        request=None,
        responses={
            200: OpenApiResponse(description="Empty body."),
            **{k: v for k, v in s.responses(200, None).items() if k[0] != 200},
        },
    )
    def destroy(self, request, pk=None, format=None):
        account = self.get_account(pk)
        services.account_soft_delete(account=account)
        return Response(Document(), status=200)
