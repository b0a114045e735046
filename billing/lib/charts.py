"""Small SVG charts drawn on the server, so the staff pages need no script and no CDN.

The functions return markup that is safe to embed: every label is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

PALETTE = ("#2563eb", "#16a34a", "#d97706", "#dc2626", "#7c3aed", "#0891b2", "#db2777")


@dataclass(frozen=True)
class Bar:
    label: str
    value: Decimal
    title: str = ""  # the tooltip; defaults to "label: value"


def _places(biggest: Decimal) -> int:
    """One number format per chart, chosen by its largest value: every tick and label
    of an axis reads alike (no "0.00" under "100")."""
    return 0 if abs(biggest) >= 100 else 2


def _fmt(value: Decimal, places: int | None = None) -> str:
    places = _places(value) if places is None else places
    return f"{value:,.{places}f}"


def _nice_max(value: Decimal) -> Decimal:
    """A round axis maximum above `value` (1, 2 or 5 times a power of ten)."""
    if value <= 0:
        return Decimal(1)
    magnitude = Decimal(10) ** (len(str(int(value))) - 1)
    for step in (1, 2, 5, 10):
        candidate = magnitude * step
        if candidate >= value:
            return candidate
    return magnitude * 10


def column_chart(
    bars: Sequence[Bar],
    *,
    title: str,
    width: int = 640,
    height: int = 220,
    colour: str = PALETTE[0],
    unit: str = "",
) -> SafeString:
    """Vertical bars with a labelled value axis (e.g. revenue per month); `unit` (a
    currency) is written above the axis. Each chart has its own scale."""
    left, right, top, bottom = 56, 8, 24, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = _nice_max(max((bar.value for bar in bars), default=Decimal(0)))
    places = _places(top_value / 4)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {width} {height}" width="100%" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    if unit:
        parts.append(
            f'<text class="unit" x="{left - 6}" y="{top - 10}" text-anchor="end" '
            f'font-size="10" fill="#6b7280">{escape(unit)}</text>'
        )
    for step in range(5):
        value = top_value * step / 4
        y = top + plot_h - plot_h * step / 4
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="#e5e7eb" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="10" '
            f'fill="#6b7280">{escape(_fmt(value, places))}</text>'
        )
    if bars:
        slot = plot_w / len(bars)
        bar_w = max(slot * 0.65, 1)
        for index, bar in enumerate(bars):
            h = float(bar.value / top_value) * plot_h if top_value else 0
            x = left + slot * index + (slot - bar_w) / 2
            y = top + plot_h - h
            tip = bar.title or f"{bar.label}: {_fmt(bar.value, places)}"
            parts.append(
                f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
                f'height="{h:.1f}" fill="{colour}" rx="2"><title>{escape(tip)}</title></rect>'
                f'<text x="{x + bar_w / 2:.1f}" y="{height - bottom + 14}" text-anchor="middle" '
                f'font-size="10" fill="#374151">{escape(bar.label)}</text>'
            )
    else:
        parts.append(
            f'<text x="{width / 2}" y="{top + plot_h / 2}" text-anchor="middle" '
            f'font-size="12" fill="#6b7280">No data</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated text is escaped above


def bar_list_chart(
    bars: Sequence[Bar], *, title: str, width: int = 480, colour: str = PALETTE[1]
) -> SafeString:
    """Horizontal bars with their labels and values (e.g. top accounts)."""
    row_h, label_w, value_w = 22, 150, 90
    height = max(len(bars), 1) * row_h + 8
    plot_w = width - label_w - value_w
    biggest = max((bar.value for bar in bars), default=Decimal(0))
    places = _places(biggest)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {width} {height}" width="100%" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    if not bars:
        parts.append(
            f'<text x="{width / 2}" y="16" text-anchor="middle" font-size="12" '
            f'fill="#6b7280">No data</text>'
        )
    for index, bar in enumerate(bars):
        y = 4 + index * row_h
        w = float(bar.value / biggest) * plot_w if biggest else 0
        label = bar.label if len(bar.label) <= 24 else bar.label[:23] + "…"
        tip = bar.title or f"{bar.label}: {_fmt(bar.value, places)}"
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end" font-size="11" '
            f'fill="#374151">{escape(label)}</text>'
            f'<rect class="bar" x="{label_w}" y="{y + 3}" width="{max(w, 1):.1f}" height="{row_h - 8}" '
            f'fill="{colour}" rx="2"><title>{escape(tip)}</title></rect>'
            f'<text x="{label_w + max(w, 1) + 6:.1f}" y="{y + 14}" font-size="11" '
            f'fill="#111827">{escape(_fmt(bar.value, places))}</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated text is escaped above
