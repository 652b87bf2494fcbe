"""Figure 3: 10,000 jobs in flight at the 60 s interval, for three intervals, on two workers.

The jobs arrive in one burst through the API (wrk), as a busy n8n instance would send them,
and the fake provider keeps every task "generating". Measured: schedule lag (when a poll
started minus the ETA its message was planned for, noted inside each worker), resident memory
of each worker, Redis bytes per job (the record, its keys and its pending message), and jobs
lost (never polled, or overdue past the sweeper's grace at the end). ``INTERVAL`` may be
scaled down; the job count scales with it, so the load stays ~167 polls/s.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import redis
import requests

from videopoll.bench import wrk
from videopoll.bench.client import Client
from videopoll.bench.procs import processes
from videopoll.bench.report import Row, below

INTERVAL = 60.0
JOBS_PER_60S = 10_000
INTERVALS = 3
SWEEP_GRACE = 60.0
MB = 1024 * 1024


def measure(redis_url: str, workdir: Path) -> tuple[list[Row], dict[str, object]]:
    jobs = round(JOBS_PER_60S * INTERVAL / 60.0)
    db = redis.Redis.from_url(redis_url)
    with processes({}, workdir) as tree:
        _, fake_url = tree.fake_provider()
        tree.env.update({"REDIS_URL": redis_url, "KIE_BASE_URL": fake_url, "KIE_API_KEY": "b",
                         "POLL_INTERVAL_SECONDS": str(INTERVAL), "RATE_LIMIT_PER_SECOND": "1e6",
                         "RATE_LIMIT_BURST": "1000000",
                         "SWEEP_GRACE_SECONDS": str(SWEEP_GRACE)})
        _, api_url = tree.gunicorn("web", "videopoll.api:create_app()")
        workers = [tree.worker(f"worker{i}", include="videopoll.bench.floor_tasks")
                   for i in (1, 2)]
        tree.beat()
        client = Client(redis_url, workers=len(workers))
        time.sleep(1.0)
        baseline = _used_memory(db)
        burst = wrk.run(api_url, 300, workdir, total=jobs,
                        stop_when=lambda: int(db.zcard("videopoll:due")) >= jobs)
        began = time.monotonic()
        created = int(db.zcard("videopoll:due"))
        memory = [_used_memory(db) - baseline]
        rss = {w.name: 0 for w in workers}
        while time.monotonic() - began < INTERVALS * INTERVAL:
            time.sleep(min(5.0, INTERVAL / 4))
            for w in workers:
                rss[w.name] = max(rss[w.name], w.memory())
        memory.append(_used_memory(db) - baseline)
        lags = sorted(client.lags_ms())
        lost, polls_per_job = _lost(db, fake_url, time.time())
        client.close()
        peak = {w.name: w.memory("VmHWM") for w in workers}
    per_job = max(memory) / max(created, 1)
    p50, p99, worst = (_pct(lags, 50), _pct(lags, 99), lags[-1] if lags else 0.0)
    scaled = "" if INTERVAL == 60 else f"interval scaled to {INTERVAL:g} s, {jobs} jobs"
    rows = [
        Row("capacity", "schedule lag p50", p50 / 1000, "s", note=scaled),
        Row("capacity", "schedule lag p99", p99 / 1000, "s", goal="< 1 s", check=below(1.0)),
        Row("capacity", "schedule lag max", worst / 1000, "s"),
        Row("capacity", "RSS per worker (peak)", max(peak.values()) / MB, "MB",
            goal="< 300 MB", check=below(300.0)),
        Row("capacity", "Redis bytes per job", per_job, "B", goal="< 2 KB",
            check=below(2048.0)),
        Row("capacity", "jobs lost", float(lost), "jobs", goal="0", check=below(0.5),
            note=f"{created} jobs, {len(lags)} polls, {polls_per_job:.2f} polls per job"),
    ]
    return rows, {"jobs": created, "burst_rps": burst.rate, "polls": len(lags),
                  "rss_now": rss, "rss_peak": peak, "redis_bytes": memory,
                  "lag_ms": {"p50": p50, "p90": _pct(lags, 90), "p99": p99, "max": worst}}


def _used_memory(db: redis.Redis) -> int:
    info: dict[str, Any] = db.info("memory")
    return int(info["used_memory"])


def _pct(values: list[int], pct: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return float(values[0])
    return float(statistics.quantiles(values, n=100, method="inclusive")[int(pct) - 1])


def _lost(db: redis.Redis, fake_url: str, now: float) -> tuple[int, float]:
    """Jobs nobody will poll: never polled, or due (past the grace) with no poll under way."""
    polls: dict[str, int] = requests.get(f"{fake_url}/_fake/stats", timeout=30).json()["polls"]
    due = db.zrangebyscore("videopoll:due", "-inf", now, withscores=True)
    keys = [k for k in db.scan_iter("videopoll:idem:task:*", count=1000)]
    never = 0
    for i in range(0, len(keys), 1000):
        for key in keys[i:i + 1000]:
            task = key.decode().rsplit(":", 1)[1]
            never += polls.get(task, 0) == 0
    mean = sum(polls.values()) / max(len(keys), 1)
    return never + len(due), mean

