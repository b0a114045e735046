"""How the invoice page shows what is stored: parties as address blocks, numbers
without storage padding, the event log as sentences."""

from __future__ import annotations

from decimal import Decimal

from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from billing.lib.money import as_written
from invoices.models import Invoice, InvoiceEvent
from invoices.pdf import format_amount

State = Invoice.State
Kind = InvoiceEvent.Kind


def plain_number(value: Decimal | None) -> str:
    """`801.0000` -> `801`, `0.04160000` -> `0.0416`, `1500` -> `1,500`: a quantity
    or a unit price as a person writes it (storage pads to the column's places)."""
    if value is None:
        return ""
    return f"{as_written(value):,f}"


def unit_price(value: Decimal | None, currency: str) -> str:
    """A unit price keeps its precision but shows at least the currency's minor unit."""
    if value is None:
        return ""
    from invoices.pdf import format_unit_price

    return format_unit_price(value, currency)


_BUYER_LINES = (
    ("org_name",),
    ("address_line1",),
    ("address_line2",),
    ("zip", "city"),
    ("state",),
    ("country",),
)
_SELLER_LINES = (("name",), *_BUYER_LINES[1:])


def party_block(details: dict | None, *, seller: bool = False) -> SafeString | str:
    """A frozen buyer or seller as an address block, then its contact and tax ids."""
    if not details:
        return "— (frozen when the invoice is issued)"
    lines = []
    for keys in _SELLER_LINES if seller else _BUYER_LINES:
        text = " ".join(str(details.get(key) or "").strip() for key in keys).strip()
        if text:
            lines.append(text)
    extras = [
        ("VAT id", details.get("vat_id") or details.get("vat_code")),
        ("E-mail", details.get("email")),
        ("Phone", details.get("phone")),
        ("Bank", details.get("bank_name")),
        ("Account holder", details.get("bank_account_holder")),
        ("IBAN", details.get("iban")),
        ("BIC", details.get("bic")),
    ]
    address = format_html_join(format_html("<br>"), "{}", ((line,) for line in lines))
    rows = format_html_join(
        "", "<dt>{}</dt><dd>{}</dd>", ((label, value) for label, value in extras if value)
    )
    return format_html('<div class="party"><address>{}</address><dl>{}</dl></div>', address, rows)


def _state(value: str) -> str:
    try:
        return State(value).label
    except ValueError:
        return value or "—"


def _who(actor: str) -> str:
    """`staff:alice` -> `alice`, `api:3` -> `API key 3`, `system:…` -> `the system`."""
    kind, _, name = actor.partition(":")
    if kind == "staff":
        return name
    if kind in ("api", "api_key", "key"):
        return f"API key {name}"
    if kind in ("system", "job", "task", "billing_run", "celery"):
        return f"the system ({name})" if name else "the system"
    return actor or "someone"


def event_sentence(event: InvoiceEvent, currency: str) -> str:
    """What happened, as a sentence without its time and actor."""
    data = event.data or {}
    if event.kind == Kind.CREATED:
        text = "created the draft"
    elif event.kind == Kind.TRANSITION:
        text = f"moved it from {_state(event.from_state)} to {_state(event.to_state)}"
        if event.to_state == State.PENDING and data.get("due_on"):
            text += f", due {data['due_on']}"
    elif event.kind == Kind.LINE_ADDED:
        cost = data.get("cost")
        amount = f" ({currency} {format_amount(Decimal(cost), currency)})" if cost else ""
        text = f"added the line “{data.get('name', '')}”{amount}"
    elif event.kind == Kind.LINE_REMOVED:
        text = f"removed the line “{data.get('name', '')}”"
    elif event.kind == Kind.UPDATED:
        changes = ", ".join(f"{key} to {value}" for key, value in sorted(data.items()))
        text = f"changed {changes}" if changes else "changed the invoice"
    elif event.kind == Kind.CHARGE_FAILED:
        text = "tried to charge the card: declined"
        if data.get("message"):
            text += f" ({data['message']})"
    elif event.kind == Kind.PDF_RENDERED:
        text = "rendered and stored the PDF"
    else:
        text = event.get_kind_display().lower()
    if event.kind != Kind.CHARGE_FAILED and data.get("reference"):
        text += f", reference {data['reference']}"
    return text


def timeline_html(invoice: Invoice) -> SafeString | str:
    """One sentence per event, oldest first: when, who, what, why."""
    events = list(invoice.events.all()) if invoice.pk else []
    if not events:
        return "—"
    items = []
    for event in events:
        when = timezone.localtime(event.created_at).strftime("%Y-%m-%d %H:%M")
        why = f" Reason: {event.reason}." if event.reason else ""
        items.append((when, _who(event.actor), event_sentence(event, invoice.currency) + ".", why))
    rows = format_html_join("", "<li><time>{}</time> <strong>{}</strong> {}{}</li>", items)
    return format_html('<ol class="timeline">{}</ol>', rows)
