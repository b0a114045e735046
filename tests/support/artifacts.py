"""Where tests keep files for a human (screenshots, reliability figures): outside the checkout.

TEST_ARTIFACTS_DIR chooses the folder; by default it is in the system's temporary folder.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def artifacts_dir(*parts: str) -> Path:
    root = os.environ.get("TEST_ARTIFACTS_DIR") or os.path.join(
        tempfile.gettempdir(), "billing-test-artifacts"
    )
    folder = Path(root, *parts)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def record_figures(name: str, **figures: Any) -> Path:
    """Keep a run's figures for docs/reliability.md (<artifacts>/reliability/<name>.json)."""
    target = artifacts_dir("reliability") / f"{name}.json"
    target.write_text(json.dumps(figures, indent=2, default=str) + "\n")
    return target
