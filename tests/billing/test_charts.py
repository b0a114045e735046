"""SVG charts: escaped labels, empty data."""

from __future__ import annotations

from decimal import Decimal

from billing.lib.charts import Bar, bar_list_chart, column_chart


def test_charts_escape_labels_and_handle_empty_data():
    svg = column_chart([Bar("<script>", Decimal("12.5"))], title='Rev "x" <b>')
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert "<b>" not in svg
    assert "No data" in column_chart([], title="t")
    assert "No data" in bar_list_chart([], title="t")
    listing = bar_list_chart([Bar("A", Decimal("3")), Bar("B", Decimal("1"))], title="t")
    assert listing.count('class="bar"') == 2
