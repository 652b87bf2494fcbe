"""Figure 1: ``POST /webhook/poll-video`` against a bare Flask route answering 202.

Both run under gunicorn with the Procfile's settings (gevent workers, two of them) and take
the same wrk load (16 connections); the API writes to a private Redis that is also its
broker, as in the default deployment. Floor and API alternate in short windows, each after a
warm-up, in another order each round, so a drift of the machine shows in both: on one commit
two rounds of 4 s gave 0.41x on one day and 0.56-0.62x on the next.
"""

from __future__ import annotations

from pathlib import Path

from videopoll.bench import wrk
from videopoll.bench.procs import processes
from videopoll.bench.report import Row, below, ratio_at_least, spread

ROUNDS = 4
WARM_SECONDS = 1
RUN_SECONDS = 2  # per window: eight seconds of load on each side in all


def measure(redis_url: str, workdir: Path) -> tuple[list[Row], dict[str, object]]:
    env = {"REDIS_URL": redis_url, "POLL_INTERVAL_SECONDS": "60"}
    with processes(env, workdir) as tree:
        _, floor_url = tree.gunicorn("floor-web", "videopoll.bench.floor_app:create_app()")
        _, api_url = tree.gunicorn("web", "videopoll.api:create_app()")
        results: dict[str, list[wrk.WrkResult]] = {"floor": [], "api": []}
        urls = {"floor": floor_url, "api": api_url}
        for n in range(ROUNDS):  # floor first, then the API first, and so on
            for name in ("floor", "api") if n % 2 == 0 else ("api", "floor"):
                wrk.run(urls[name], WARM_SECONDS, workdir)
                results[name].append(wrk.run(urls[name], RUN_SECONDS, workdir))
    floor, api = (_merge(results["floor"]), _merge(results["api"]))
    if api["errors"]:
        raise RuntimeError(f"submissions failed: {api['errors']} errors")
    rows = [
        Row("submit", "throughput", api["rate"], "req/s", floor["rate"], "bare Flask route",
            "≥ 0.5x", ratio_at_least(0.5),
            note=spread([r.rate for r in results["api"]], [r.rate for r in results["floor"]])),
        Row("submit", "latency p50", api["p50_ms"], "ms", floor["p50_ms"], "bare Flask route"),
        Row("submit", "latency p99", api["p99_ms"], "ms", floor["p99_ms"], "bare Flask route",
            "< 20 ms", below(20.0), note=f"of all {ROUNDS} windows' requests; the worst "
            f"window's own {api['worst_window_p99_ms']:.1f} ms"),
    ]
    return rows, {"floor": floor, "api": api}


def _merge(runs: list[wrk.WrkResult]) -> dict[str, float]:
    """The windows of one side: total rate, and the percentiles of all their requests."""
    seconds = sum(r.seconds for r in runs)
    return {"rate": sum(r.requests for r in runs) / seconds,
            "p50_ms": wrk.merged_percentile(runs, 50), "p99_ms": wrk.merged_percentile(runs, 99),
            "worst_window_p99_ms": max(r.p99_ms for r in runs),
            "max_ms": max(r.max_ms for r in runs), "errors": sum(r.errors for r in runs)}
