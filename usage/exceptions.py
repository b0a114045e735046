"""Named errors of the usage domain. The /v1 views map them to status codes."""

from __future__ import annotations


class UsageError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageRecordsInvalid(UsageError):
    """One or more records of a batch are bad; nothing of the batch was written.

    `errors` lists every problem as {"index", "field", "message"}.
    """

    def __init__(self, errors: list[dict]) -> None:
        count = len({error["index"] for error in errors})
        super().__init__(
            f"{count} record{'s' if count != 1 else ''} of the batch "
            f"{'are' if count != 1 else 'is'} invalid; nothing was stored."
        )
        self.errors = errors


class UsageBatchTooLarge(UsageError):
    """More records in one request than the ingestion limit."""


class UsageBatchEmpty(UsageError):
    """A request without any record."""


class InvalidBillingMonth(UsageError):
    """The billing run was asked for a month it cannot bill."""


class PricingError(UsageError):
    """A refused change to metrics, plans or subscriptions."""


class PricingValidationError(PricingError):
    """A bad value; `field` names it as the /v1 request does (`charges[0].tiers[1].up_to`)."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


class PlanImmutable(PricingError):
    """The plan has subscriptions: publish a new plan and move them to it."""


class SubscriptionConflict(PricingError):
    """The change would overlap another subscription, or the subscription has ended."""
