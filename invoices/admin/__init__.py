"""The finance workspace for invoices, registered with the admin site.

- `invoice.py`: the invoice list and page (`InvoiceAdmin`)
- `actions.py`: its bulk actions, each one service turned into an action
- `filters.py`, `forms.py`, `inlines.py`: the list filters, forms and inlines it uses
- `records.py`: the tables only services write (lines, payments, events, counters)
- invoices.delivery.admin: the outbox, webhook endpoints and attempts, the messages inline,
  the credit notes (their hosted links)
"""

from invoices.admin.invoice import InvoiceAdmin
from invoices.admin.records import (
    InvoiceCounterAdmin,
    InvoiceEventAdmin,
    LineItemAdmin,
    PaymentTransactionAdmin,
)
from invoices.delivery.admin import (
    CreditNoteAdmin,
    NotificationAdmin,
    WebhookAttemptAdmin,
    WebhookEndpointAdmin,
)

__all__ = [
    "CreditNoteAdmin",
    "InvoiceAdmin",
    "InvoiceCounterAdmin",
    "InvoiceEventAdmin",
    "LineItemAdmin",
    "NotificationAdmin",
    "PaymentTransactionAdmin",
    "WebhookAttemptAdmin",
    "WebhookEndpointAdmin",
]
