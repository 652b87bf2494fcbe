"""One row per figure: the measured value beside its floor from the same run, and the ratio.

The ratio is what the goals are stated in, because the absolute numbers move with the machine
and with whatever else it is doing; a floor measured seconds earlier in the same process tree
moves with them. ``latest.json`` keeps every row (keys ``ratio`` and ``goal_met``) and
``latest.md`` the same as a table to paste into the README.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Row:
    figure: str
    metric: str
    value: float
    unit: str
    floor: float | None = None
    floor_label: str = ""
    goal: str = ""
    # judged on (value, ratio); None: the row has no goal of its own
    check: Callable[[float, float | None], bool] | None = field(default=None, repr=False)
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.floor is None or self.floor == 0:
            return None
        return self.value / self.floor

    @property
    def goal_met(self) -> bool | None:
        return None if self.check is None else self.check(self.value, self.ratio)

    def as_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if k != "check"}
        data["ratio"] = None if self.ratio is None else round(self.ratio, 3)
        data["goal_met"] = self.goal_met
        return data


def ratio_at_least(minimum: float) -> Callable[[float, float | None], bool]:
    return lambda _value, ratio: ratio is not None and ratio >= minimum


def below(maximum: float) -> Callable[[float, float | None], bool]:
    return lambda value, _ratio: value < maximum


def spread(ours: list[float], floors: list[float]) -> str:
    """The ratio round by round (rates of the same rounds): how far the machine moved it
    during this run."""
    ordered = sorted(o / f for o, f in zip(ours, floors, strict=True) if f)
    return f"rounds {ordered[0]:.2f}x to {ordered[-1]:.2f}x" if ordered else ""


def machine() -> dict[str, Any]:
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": model, "python": platform.python_version()}


def _fmt(value: float | None) -> str:
    if value is None:
        return "—"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if abs(value) >= 0.1 else f"{value:.3f}"


def markdown(rows: list[Row], meta: dict[str, Any]) -> str:
    m = meta["machine"]
    lines = [f"`make bench` on {meta['date']}, {m['nproc']} x {m['cpu']}, Python {m['python']}"
             f" ({meta['seconds']:.0f} s).", "",
             "| figure | measure | value | floor (same run) | ratio | goal | met |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        floor = f"{_fmt(r.floor)} {r.unit} ({r.floor_label})" if r.floor is not None else "—"
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else "—"
        met = {True: "yes", False: "**no**", None: ""}[r.goal_met]
        lines.append(f"| {r.figure} | {r.metric} | {_fmt(r.value)} {r.unit} | {floor} | {ratio}"
                     f" | {r.goal} | {met} |")
    notes = [f"- {r.figure}, {r.metric}: {r.note}" for r in rows if r.note]
    return "\n".join(lines + (["", *notes] if notes else [])) + "\n"


def write(rows: list[Row], out_dir: Path, seconds: float, extra: dict[str, Any]) -> str:
    meta = {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "machine": machine(), "seconds": seconds}
    table = markdown(rows, meta)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = {**meta, "rows": [r.as_dict() for r in rows],
            "ratios": {f"{r.figure}.{r.metric}.ratio": round(r.ratio, 3)
                       for r in rows if r.ratio is not None},
            "details": extra}
    (out_dir / "latest.json").write_text(json.dumps(data, indent=2) + "\n")
    (out_dir / "latest.md").write_text(table)
    return table
