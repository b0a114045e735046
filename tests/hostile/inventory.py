"""The hostile cases by family, counted from the suite's own parametrization.

`python -m tests.hostile.inventory` prints the table that docs/reliability.md
carries; test_inventory.py fails when the two drift apart.
"""

from __future__ import annotations

import os
from collections import Counter

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

VALUE_FAMILIES = {
    "surrogate": "lone surrogate (`\\ud800`)",
    "nul": "NUL character",
    "text-10k": "10,000-character text",
    "list": "a list where a scalar belongs",
    "list-service": "a list where a scalar belongs",
    "underscore-1_000": "`1_000`",
    "1e400": "huge and tiny numbers (`1e400`, `-1e400`, `1e-400`, 10,000 digits)",
    "-1e400": "huge and tiny numbers (`1e400`, `-1e400`, `1e-400`, 10,000 digits)",
    "1e-400": "huge and tiny numbers (`1e400`, `-1e400`, `1e-400`, 10,000 digits)",
    "digits-10k": "huge and tiny numbers (`1e400`, `-1e400`, `1e-400`, 10,000 digits)",
    "NaN": "`NaN` and `Infinity`",
    "Infinity": "`NaN` and `Infinity`",
}
NON_ASCII = "non-ASCII digits (`²`, `٣`, `３`)"
YEARS = "year 0 and year 9999"
MONTHS = "month 13 and month 00"


def value_family(value_id: str) -> str:
    if value_id in VALUE_FAMILIES:
        return VALUE_FAMILIES[value_id]
    if value_id.startswith(("superscript", "arabic-indic", "fullwidth")):
        return NON_ASCII
    if value_id.startswith("year-"):
        return YEARS
    if value_id.startswith("month-") or value_id in ("00", "13"):
        return MONTHS
    raise KeyError(value_id)


def counts() -> tuple[Counter[str], Counter[str], int]:
    """(parameter cases by value family, the other cases by family, parameters covered)."""
    import django
    from django.apps import apps

    if not apps.ready:  # run as a script; under pytest Django is already set up
        django.setup()
    from tests.hostile import test_access, test_bodies, test_defects
    from tests.hostile.cases import TARGETS, cases

    by_value: Counter[str] = Counter()
    for api in ("3scale", "v1"):
        for _target, value in cases(api):
            by_value[value_family(value.id)] += 1
    other: Counter[str] = Counter()
    other['deeply nested bodies (`[`×5000, `{"a":`×3000), with and without a key'] = len(
        test_bodies.DEEP_CASES
    )
    other["badly encoded bodies (Latin-1 bytes, UTF-16, cut UTF-8)"] = len(
        test_bodies.BODY_ENDPOINTS
    ) * len(test_bodies.BAD_ENCODING)
    other["17 MiB bodies (413)"] = len(test_bodies.OVERSIZED)
    other["chunked bodies (read, or 411)"] = len(test_bodies.CHUNKED)
    other["another account's ids with an account-limited key (404)"] = len(test_access.FOREIGN) + 1
    other["path ids that are not ids (404)"] = len(test_access.ID_CASES)
    other["the defects' reproductions (test functions)"] = sum(
        1 for name in dir(test_defects) if name.startswith("test_")
    )
    return by_value, other, len(TARGETS)


def table() -> str:
    by_value, other, parameters = counts()
    lines = [
        f"Parameter table: {parameters} parameters of {len(_endpoints())} endpoints "
        "(writes and lists), "
        f"{sum(by_value.values())} cases.",
        "",
        "| hostile value (each parameter gets the values of its type) | cases |",
        "|---|---|",
    ]
    lines += [f"| {family} | {count} |" for family, count in by_value.most_common()]
    lines += [
        "",
        "| hostile request | tests |",
        "|---|---|",
    ]
    lines += [f"| {family} | {count} |" for family, count in other.items()]
    return "\n".join(lines)


def _endpoints() -> set[tuple[str, str]]:
    from tests.hostile.cases import TARGETS

    return {(t.method, t.path) for t in TARGETS}


if __name__ == "__main__":
    print(table())  # noqa: T201
