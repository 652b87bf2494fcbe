"""``make bench`` (``python -m videopoll.bench``): every figure, a table, ``bench/results/``.

Each figure starts its own private Redis (``local_redis``, never the machine's :6379) and its
own processes, measures itself and its floor in the same run, and stops them again.
``--only submit,polls`` runs a subset; ``--capacity-interval`` scales figure 3's interval
(and its job count with it, so the polls per second stay those of 10,000 jobs at 60 s).
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from videopoll.bench import capacity, delivery, polls, submit, time_to_user
from videopoll.bench.report import Row, write
from videopoll.local_redis import local_redis

Figure = Callable[[str, Path], tuple[list[Row], dict[str, object]]]
FIGURES: dict[str, Figure] = {
    "submit": submit.measure,
    "polls": polls.measure,
    "capacity": capacity.measure,
    "time_to_user": time_to_user.measure,
    "delivery": delivery.measure,
}
RESULTS = Path("bench/results")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m videopoll.bench")
    parser.add_argument("--only", default=",".join(FIGURES),
                        help=f"comma-separated figures: {', '.join(FIGURES)}")
    parser.add_argument("--capacity-interval", type=float, default=capacity.INTERVAL,
                        help="figure 3's poll interval in seconds (default 60)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so every figure stops the processes it started
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    capacity.INTERVAL = args.capacity_interval
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(FIGURES))
    if unknown:
        parser.error(f"unknown figures: {', '.join(unknown)}")
    began = time.monotonic()
    rows: list[Row] = []
    details: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="videopoll-bench-") as tmp:
        for name in chosen:
            workdir = Path(tmp) / name
            workdir.mkdir()
            print(f"… {name}", file=sys.stderr, flush=True)
            with local_redis(workdir) as base:
                figure_rows, details[name] = FIGURES[name](f"{base}/0", workdir)
            rows += figure_rows
    print(write(rows, args.out, time.monotonic() - began, details))
    print(f"wrote {args.out / 'latest.json'} and {args.out / 'latest.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
