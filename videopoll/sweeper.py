"""Find jobs whose expected message never came, and hand them back (invariants 1 and 10).

A job is "due" when its next poll is overdue by the grace period (the message was lost, or
its worker died mid-poll), when it is ``delayed`` and its slow-cadence poll is due, or when it
has been ``delivering`` longer than the delivery lease. Each due entry is *taken* with an
atomic compare-and-set before anything is re-enqueued, so two sweeps reading the same due list
(two beats, or a slow sweep overtaken by the next) act on it once. Re-enqueued polls carry the
job's current token, so a message that turns up late anyway is dropped by the fence.

Terminal jobs whose notify/record chain never reported done (a lost publish, a crash) sit in
the outbox; the sweeper re-runs that chain, bounded in runs that crashed and in time. A
record that cannot be read is quarantined and logged: one bad job never stops the sweep of
the others.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from videopoll import metrics, transitions
from videopoll.models import JobStatus
from videopoll.notify import channel_stage
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
    for job_id in rt.store.outbox_due(now):
        if job_id in handled:
            continue
        step = _resend_chain(rt, job_id, now)
        if step is not None:
            metrics.sweeper_recovered(step.action, step.reason)
            yield job_id, step


def _resend_chain(rt: Runtime, job_id: str, now: float) -> Next | None:
    """Re-run a finished job's notify/record chain that is overdue, if it needs it.

    Only a chain that *started* and then stopped (its worker died: its stage leases ran out)
    counts against ``MAX_OUTBOX_TRIES``: a job that kills every worker that touches it must
    not loop. A chain that never started is queued behind a backlog or was lost, and telling
    the two apart would take reading the queue; it is re-sent without counting, at growing
    intervals (duplicates are harmless: every stage is marked), until the delivery budget
    has passed since the first re-run. A chain running right now is left alone.
    """
    s = rt.settings
    lease = s.delivery_lease_seconds
    stages = [channel_stage("notify", n.name) for n in rt.notifiers] + ["record"]
    if rt.store.stages_held(job_id, stages):
        rt.store.take_outbox(job_id, now, now + lease)  # look again once the lease is over
        return None
    runs = rt.store.outbox_runs(job_id)
    # a notify step began since the last re-run and never ended: its worker died mid-run (one
    # that ended and waits for its record step or its retry is queued, like one never started)
    lapsed = runs.started > max(runs.sent, runs.ended)
    first = runs.first or now
    if lapsed and runs.lapsed + 1 > MAX_OUTBOX_TRIES:
        _give_up(rt, job_id, "its chain stopped mid-run too often")
        return None
    if not lapsed and now - first > s.delivery_budget_seconds:
        _give_up(rt, job_id, "its chain never ran to its end within the delivery budget")
        return None
    wait = lease if lapsed else min(lease, max(s.sweep_grace_seconds, 1.0) * 2 ** runs.resends)
    if not rt.store.take_outbox(job_id, now, now + wait):
        return None  # another sweep took it
    rt.store.outbox_resent(job_id, now, lapsed, first)
    return Next("finish", reason="notify/record chain lapsed" if lapsed
                else "notify/record chain overdue")


def _give_up(rt: Runtime, job_id: str, why: str) -> None:
    log.error("gave up telling the user about a finished job: %s", why,
              extra={"job_id": job_id})
    rt.store.outbox_done(job_id)


def _recover(rt: Runtime, job_id: str, now: float) -> Next | None:
    s = rt.settings
    job = rt.store.get(job_id)
    if job is None or job.status.terminal:
        rt.store.forget_due(job_id)
        return None
    if job.status is JobStatus.DELIVERING:
        if not rt.store.take_due(job_id, now, now + s.delivery_lease_seconds):
            return None
        # a stored video stays stored: its re-runs count no store tries
        tries = 0 if job.delivery.storage_key else rt.store.stage_tries(job_id, "store")
        outcome = transitions.redeliver(rt.store, job_id, s.max_delivery_runs,
                                        s.delivery_budget_seconds, now, tries)
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
