"""Find jobs whose expected message never came, and hand them back (invariants 1 and 10).

A job is "due" when its next poll is overdue by the grace period (the message was lost, or
its worker died mid-poll), when it is ``delayed`` and its slow-cadence poll is due, or when it
has been ``delivering`` longer than the delivery lease. Each due entry is *taken* with an
atomic compare-and-set before anything is re-enqueued, so two sweeps reading the same due list
(two beats, or a slow sweep overtaken by the next) act on it once. Re-enqueued polls carry the
job's current token, so a message that turns up late anyway is dropped by the fence.

Terminal jobs whose notify/record chain never reported done (a lost publish, a crash) sit in
the outbox; the sweeper re-runs that chain a bounded number of times. A record that cannot be
read is quarantined and logged: one bad job never stops the sweep of the others.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from videopoll import metrics, transitions
from videopoll.models import JobStatus
from videopoll.polling import Next, fail
from videopoll.runtime import Runtime
from videopoll.store import UnreadableJobError

log = logging.getLogger(__name__)

MAX_OUTBOX_TRIES = 5


def sweep(rt: Runtime, now: float | None = None) -> Iterator[tuple[str, Next]]:
    """Yield (job id, what to do) for each job this sweep took over."""
    now = time.time() if now is None else now
    handled: set[str] = set()
    for job_id in rt.store.due_jobs(now):
        try:
            step = _recover(rt, job_id, now)
        except UnreadableJobError as exc:
            log.error("unreadable job record quarantined",
                      extra={"job_id": job_id, "reason": exc.reason})
            rt.store.quarantine(job_id)
            continue
        if step is not None:
            handled.add(job_id)
            metrics.sweeper_recovered(step.action, step.reason)
            yield job_id, step
    retry_at = now + rt.settings.delivery_lease_seconds
    for job_id in rt.store.outbox_due(now):
        if job_id in handled or not rt.store.take_outbox(job_id, now, retry_at):
            continue
        if rt.store.outbox_try(job_id) > MAX_OUTBOX_TRIES:
            log.error("gave up telling the user about a finished job", extra={"job_id": job_id})
            rt.store.outbox_done(job_id)
            continue
        step = Next("finish", reason="notify/record chain overdue")
        metrics.sweeper_recovered(step.action, step.reason)
        yield job_id, step


def _recover(rt: Runtime, job_id: str, now: float) -> Next | None:
    s = rt.settings
    job = rt.store.get(job_id)
    if job is None or job.status.terminal:
        rt.store.forget_due(job_id)
        return None
    if job.status is JobStatus.DELIVERING:
        if not rt.store.take_due(job_id, now, now + s.delivery_lease_seconds):
            return None
        outcome = transitions.redeliver(rt.store, job_id, s.max_delivery_runs,
                                        s.delivery_budget_seconds, now)
        if outcome == "deliver":
            return Next("deliver", reason="delivery overdue")
        if outcome == "exhausted":
            return Next("finish", reason="delivery budget spent")
        return None
    if now >= job.deadline_at:
        return fail(rt, job_id, transitions.deadline_code(job), "hard deadline reached")
    if not rt.store.take_due(job_id, now, now + s.poll_lease_seconds):
        return None
    return Next("poll", token=job.poll_token, reason="overdue")
