"""Named errors of the invoice domain. Each API maps them to its own status codes."""

from __future__ import annotations


class InvoiceError(Exception):
    """Base class: `field` names what was wrong ("base" when it is the invoice as a whole)."""

    field = "base"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if field is not None:
            self.field = field


class InvalidInvoiceTransition(InvoiceError):
    """The state machine does not allow the requested move."""


class InvoiceLocked(InvoiceError):
    """The invoice is no longer editable (it has been issued or cancelled)."""


class InvoiceNotChargeable(InvoiceError):
    field = "state"


class ChargeFailed(InvoiceError):
    """The payment gateway declined the charge (the attempt is recorded)."""


class AccountNotBillable(InvoiceError):
    """The buyer account is deleted and can receive no new invoice or issue."""


class InvoiceValidationError(InvoiceError):
    """A value given to a service is invalid; `field` says which."""


class RefundFailed(InvoiceError):
    """The payment gateway refused a refund; nothing was written."""
