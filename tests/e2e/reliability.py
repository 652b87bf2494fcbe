"""Figures the fault and soak tests measured, kept for ``docs/RELIABILITY.md``.

Each test that breaks something records one row: the fault, what the test did, and what it
measured (jobs lost, duplicates, recovery time). Rows go to ``var/reliability/<run>.json``
keyed by fault, so a re-run replaces its own row; ``scripts/reliability_report`` renders them.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from tests.e2e.stack import REPO

OUT = Path(os.environ.get("RELIABILITY_DIR", REPO / "var" / "reliability"))


def machine() -> str:
    return f"{platform.node()} · {os.cpu_count()} cores · {platform.platform(terse=True)}"


def record(fault: str, did: str, measured: dict[str, Any], run: str = "faults") -> None:
    """Add (or replace) the row for ``fault`` in ``var/reliability/<run>.json``."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{run}.json"
    rows: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    rows[fault] = {"did": did, "measured": measured, "at": time.strftime("%Y-%m-%d %H:%M"),
                   "machine": machine()}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(rows, indent=2, sort_keys=True))
    tmp.replace(path)


def p99(values: list[float]) -> float:
    """The 99th percentile (nearest rank) of ``values``; 0 for none."""
    if not values:
        return 0.0
    ranked = sorted(values)
    return round(ranked[min(len(ranked) - 1, int(0.99 * len(ranked)))], 2)
