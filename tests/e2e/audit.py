"""Count what a stack did for a batch of jobs: ends reached, videos, messages, callbacks.

The promise under test is "a job accepted is delivered once, or fails with a clear message".
An audit reads the truth (the Redis records), then every place a duplicate would show: the
stored objects, the console notifier's lines, the analytics stream, the caller's callbacks, and
the fake provider's per-task poll and download counters.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import redis

from tests.e2e.stack import TERMINAL, Stack
from tests.listeners import Listener
from videopoll.models import JobRecord


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


def messages(stack: Stack) -> list[dict[str, Any]]:
    """What the console notifier told users, one dict per message (job_id, status…)."""
    return [json.loads(line.removeprefix("NOTIFY ")) for line in stack.notifications()]


def records(stack: Stack, job_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The stored record of each job (missing ones left out), read straight from Redis."""
    client = redis.Redis.from_url(stack.env["REDIS_URL"], decode_responses=True)
    ids = list(job_ids)
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        for job_id, raw in zip(chunk, client.mget([f"videopoll:job:{j}" for j in chunk]),
                               strict=True):
            if raw:  # stored without default fields: the model fills them in
                found[job_id] = JobRecord.model_validate_json(raw).model_dump(mode="json")
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


def collect_terminal(stack: Stack, jobs: Iterable[Submitted],
                     ends: dict[str, dict[str, Any]]) -> int:
    """Add the record of each job that has ended to ``ends`` (before its retention runs out);
    how many jobs have ended so far."""
    pending = [j.job_id for j in jobs if j.job_id not in ends]
    for job_id, view in records(stack, pending).items():
        if view["status"] in TERMINAL:
            ends[job_id] = view
    return len(ends)


def audit(stack: Stack, jobs: list[Submitted], polls: dict[str, int],
          downloads: dict[str, int], callbacks: Listener | None = None,
          ends: dict[str, dict[str, Any]] | None = None) -> Audit:
    """Every way the batch could have broken the promise, counted (``ends``: the records
    collected as jobs ended, when retention may have expired some since)."""
    views = {**records(stack, [j.job_id for j in jobs]), **(ends or {})}
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
    # one message per job and event ("delayed", then the outcome); one outcome per job
    told = Counter((e["job_id"], e["status"]) for e in messages(stack) if e["job_id"] in ids)
    sent: Counter[str] = Counter()
    for (job, _status), n in told.items():
        sent[job] = max(sent[job], n)
    for job, n in Counter(job for job, status in told if status in TERMINAL).items():
        sent[job] = max(sent[job], n)
    client = redis.Redis.from_url(stack.env["REDIS_URL"], decode_responses=True)
    stream: list[tuple[str, dict[str, str]]] = client.xrange("videopoll:results")  # type: ignore[assignment]
    rows = Counter(row["jobId"] for _, row in stream if row["jobId"] in ids)
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


def told_between(stack: Stack, runs: int, start: float, end: float) -> set[str]:
    """Jobs whose user was told (a console ``NOTIFY`` line of workers 1..``runs``) between
    wall times ``start`` and ``end``: the sends whose receipt a kill or a Redis outage in
    that span can have cut off (the console notifier's id carries the send time)."""
    jobs: set[str] = set()
    for run in range(1, runs + 1):
        for line in stack.log(f"worker{run}").splitlines():
            if line.startswith("NOTIFY "):
                event = json.loads(line.removeprefix("NOTIFY "))
                sent_at = int(event["message_id"].rsplit("-", 1)[1]) / 1000
                if start <= sent_at <= end:
                    jobs.add(event["job_id"])
    return jobs
