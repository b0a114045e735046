"""The finance workspace for invoices, registered with the admin site.

- `invoice.py`: the invoice list and page (`InvoiceAdmin`)
- `actions.py`: its bulk actions, each one service turned into an action
- `filters.py`, `forms.py`, `inlines.py`: the list filters, forms and inlines it uses
- `records.py`: the tables only services write (lines, payments, events, counters)
"""

from invoices.admin.invoice import InvoiceAdmin
from invoices.admin.records import (
    InvoiceCounterAdmin,
    InvoiceEventAdmin,
    LineItemAdmin,
    PaymentTransactionAdmin,
)

__all__ = [
    "InvoiceAdmin",
    "InvoiceCounterAdmin",
    "InvoiceEventAdmin",
    "LineItemAdmin",
    "PaymentTransactionAdmin",
]
