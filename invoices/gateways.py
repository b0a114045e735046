"""Payment gateways: the interface the charge service uses, and a deterministic test gateway."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

from django.conf import settings
from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from accounts.models import Account


# Keys of a gateway's answer that carry payment-method secrets (matched without
# case; a key containing one of the words counts too).
SECRET_KEY_WORDS = ("token", "secret", "password", "cvv", "cvc", "card_number", "iban")
SECRET_KEYS = frozenset({"pan", "card", "account_number", "routing_number"})


def _is_secret_key(key: object) -> bool:
    name = str(key).lower()
    return name in SECRET_KEYS or any(word in name for word in SECRET_KEY_WORDS)


def gateway_response_public(response: object, *, secrets_: tuple[str, ...] = ()) -> object:
    """A gateway's answer without payment-method secrets, safe to store and to show.

    Drops every key that names a secret (`token`, `card_token`, `cvc`, ...) at
    any depth, and blanks any value equal to one of `secrets_` (the account's
    card token, say) wherever it appears.
    """
    if isinstance(response, dict):
        return {
            key: gateway_response_public(value, secrets_=secrets_)
            for key, value in response.items()
            if not _is_secret_key(key)
        }
    if isinstance(response, list):
        return [gateway_response_public(value, secrets_=secrets_) for value in response]
    if isinstance(response, str) and any(secret and secret in response for secret in secrets_):
        return "[REDACTED]"
    return response


@dataclass(frozen=True)
class GatewayResult:
    success: bool
    reference: str
    message: str
    test: bool
    card_brand: str = ""
    card_last4: str = ""
    card_exp_month: int | None = None
    card_exp_year: int | None = None
    response: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        # What a gateway answers is stored and shown: never with a card's secrets.
        object.__setattr__(self, "response", gateway_response_public(self.response))


class PaymentGateway(Protocol):
    def purchase(
        self, *, account: Account, amount: Decimal, currency: str, description: str
    ) -> GatewayResult: ...

    def refund(
        self, *, account: Account, amount: Decimal, currency: str, reference: str, description: str
    ) -> GatewayResult:
        """Give back `amount` of the purchase `reference` (a card payment)."""
        ...


@dataclass(frozen=True)
class _TestCard:
    success: bool
    brand: str
    last4: str
    message: str
    code: str


class TestGateway:
    """Outcomes fixed by the account's card token, like real gateways' test cards."""

    CARDS: dict[str, _TestCard] = {
        "tok_visa": _TestCard(True, "Visa", "4242", "Transaction approved", "approved"),
        "tok_mastercard": _TestCard(True, "Mastercard", "4444", "Transaction approved", "approved"),
        "tok_amex": _TestCard(True, "American Express", "8431", "Transaction approved", "approved"),
        "tok_chargeDeclined": _TestCard(
            False, "Visa", "0002", "Your card was declined.", "card_declined"
        ),
        "tok_chargeDeclinedInsufficientFunds": _TestCard(
            False, "Visa", "9995", "Your card has insufficient funds.", "insufficient_funds"
        ),
        "tok_chargeDeclinedExpiredCard": _TestCard(
            False, "Visa", "0069", "Your card has expired.", "expired_card"
        ),
    }

    def purchase(
        self, *, account: Account, amount: Decimal, currency: str, description: str
    ) -> GatewayResult:
        reference = f"ch_test_{secrets.token_hex(8)}"
        card = self.CARDS.get(account.card_token)
        if card is None:
            return GatewayResult(
                success=False,
                reference=reference,
                message="No valid payment method on file.",
                test=True,
                response={"code": "no_payment_method", "token": account.card_token or None},
            )
        return GatewayResult(
            success=card.success,
            reference=reference,
            message=card.message,
            test=True,
            card_brand=card.brand,
            card_last4=card.last4,
            card_exp_month=account.card_exp_month or 12,
            card_exp_year=account.card_exp_year or 2030,
            response={
                "code": card.code,
                "amount": str(amount),
                "currency": currency,
                "description": description,
            },
        )

    # A purchase reference the test gateway refuses to refund (a charge too old, say).
    UNREFUNDABLE_SUFFIX = "_norefund"

    def refund(
        self, *, account: Account, amount: Decimal, currency: str, reference: str, description: str
    ) -> GatewayResult:
        refund_reference = f"re_test_{secrets.token_hex(8)}"
        if not reference or reference.endswith(self.UNREFUNDABLE_SUFFIX):
            return GatewayResult(
                success=False,
                reference=refund_reference,
                message="The charge cannot be refunded.",
                test=True,
                response={"code": "charge_not_refundable", "charge": reference},
            )
        return GatewayResult(
            success=True,
            reference=refund_reference,
            message="Refund approved",
            test=True,
            response={
                "code": "refunded",
                "charge": reference,
                "amount": str(amount),
                "currency": currency,
                "description": description,
            },
        )


def get_gateway() -> PaymentGateway:
    return import_string(settings.PAYMENT_GATEWAY)()
