"""Count what a stack did for a batch of jobs: ends reached, videos, messages, callbacks.

The promise under test is "a job accepted is delivered once, or fails with a clear message".
An audit reads the truth (the Redis records), then every place a duplicate would show: the
stored objects, the console notifier's lines, the analytics stream, the caller's callbacks, and
the fake provider's per-task poll and download counters.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import redis

from tests.e2e.stack import TERMINAL, Stack
from tests.listeners import Listener

JOB_IN_LINE = re.compile(r"job_[0-9a-f]{32}")


@dataclass
class Submitted:
    job_id: str
    task: str
    scenario: str
    expect: str  # the terminal status this scenario must end in


@dataclass
class Audit:
    views: dict[str, dict[str, Any]]
    lost: list[str] = field(default_factory=list)  # accepted, never terminal (or gone)
    wrong: list[tuple[str, str, str]] = field(default_factory=list)  # (job, expected, got)
    duplicates: dict[str, list[str]] = field(default_factory=dict)  # what → jobs twice
    extra_polls: dict[str, int] = field(default_factory=dict)  # job → provider calls - attempts
    redownloads: int = 0
    resent: dict[str, int] = field(default_factory=dict)  # retried sends a receiver can spot

    @property
    def duplicate_count(self) -> int:
        return sum(len(jobs) for jobs in self.duplicates.values())


def records(stack: Stack, job_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The stored record of each job (missing ones left out), read straight from Redis."""
    client = redis.Redis.from_url(stack.env["REDIS_URL"], decode_responses=True)
    ids = list(job_ids)
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        for job_id, raw in zip(chunk, client.mget([f"videopoll:job:{j}" for j in chunk]),
                               strict=True):
            if raw:
                found[job_id] = json.loads(raw)
    return found


def unfinished(stack: Stack, job_ids: Iterable[str]) -> list[str]:
    ids = list(job_ids)
    done = records(stack, ids)
    return [j for j in ids if done.get(j, {}).get("status") not in TERMINAL]


def wait_all_terminal(stack: Stack, job_ids: list[str], timeout: float) -> None:
    left = list(job_ids)

    def done() -> bool:
        left[:] = unfinished(stack, left)
        return not left

    Stack.wait_until(done, timeout, f"{len(job_ids)} jobs to finish ({len(left)} left)")


def audit(stack: Stack, jobs: list[Submitted], polls: dict[str, int],
          downloads: dict[str, int], callbacks: Listener | None = None) -> Audit:
    """Every way the batch could have broken the promise, counted."""
    views = records(stack, [j.job_id for j in jobs])
    result = Audit(views)
    for job in jobs:
        view = views.get(job.job_id)
        if view is None or view["status"] not in TERMINAL:
            result.lost.append(job.job_id)
        elif view["status"] != job.expect:
            result.wrong.append((job.job_id, job.expect, view["status"]))
        elif polls.get(job.task, 0) != view["attempts"]:
            result.extra_polls[job.job_id] = polls.get(job.task, 0) - view["attempts"]
        if downloads.get(job.task, 0) > 1:
            result.redownloads += downloads[job.task] - 1
    ids = {j.job_id for j in jobs}
    sent = Counter(m.group(0) for line in stack.notifications()
                   if (m := JOB_IN_LINE.search(line)) and m.group(0) in ids)
    client = redis.Redis.from_url(stack.env["REDIS_URL"], decode_responses=True)
    rows = Counter(row["jobId"] for _, row in client.xrange("videopoll:results")
                   if row["jobId"] in ids)
    stored = Counter(p.stem for p in (stack.workdir / "videos").rglob("job_*.mp4"))
    counts = {"user messages": sent, "analytics rows": rows, "stored videos": stored}
    if callbacks is not None:
        # a resend carries the same webhook-id (the receiver drops it); two ids are two events
        ids_seen = [r.headers.get("webhook-id", r.headers.get("Webhook-Id", ""))
                    for r in callbacks.received]
        counts["callbacks"] = Counter(i.split(".")[0] for i in set(ids_seen))
        result.resent["callbacks (same webhook-id)"] = len(ids_seen) - len(set(ids_seen))
    for what, counter in counts.items():
        twice = sorted(j for j, n in counter.items() if j in ids and n > 1)
        if twice:
            result.duplicates[what] = twice
    return result
