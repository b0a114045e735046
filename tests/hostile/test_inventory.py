"""docs/reliability.md lists the hostile cases with the counts of this suite."""

from __future__ import annotations

from pathlib import Path

from tests.hostile.inventory import table

DOC = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"


def test_the_reliability_doc_carries_the_current_hostile_counts():
    assert table() in DOC.read_text(), (
        "docs/reliability.md is out of date: paste the output of "
        "`python -m tests.hostile.inventory` into its Hostile input section"
    )
