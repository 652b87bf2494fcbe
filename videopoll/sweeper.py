"""Find jobs whose expected message never came, and hand them back to the poller (invariant 1).

A job is "due" when its next poll is overdue by the grace period (the message was lost, or
its worker died mid-poll), when it is ``delayed`` and its slow-cadence poll is due, or when it
has been ``delivering`` longer than the delivery lease. Re-enqueued polls carry the job's
current token, so a message that turns up late anyway is dropped by the fence.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from videopoll.models import ErrorCode, JobStatus
from videopoll.polling import Next, fail
from videopoll.runtime import Runtime


def sweep(rt: Runtime, now: float | None = None) -> Iterator[tuple[str, Next]]:
    """Yield (job id, what to do) for each due job, pushing its due time on first."""
    now = time.time() if now is None else now
    for job_id in rt.store.due_jobs(now):
        job = rt.store.get(job_id)
        if job is None or job.status.terminal:
            rt.store.forget_due(job_id)
            continue
        if job.status is JobStatus.DELIVERING:
            rt.store.touch_due(job_id, now + rt.settings.delivery_lease_seconds)
            yield job_id, Next("deliver", reason="delivery overdue")
            continue
        if now >= job.deadline_at:
            yield job_id, fail(rt, job_id, ErrorCode.PROVIDER_TIMEOUT, "hard deadline reached")
            continue
        rt.store.touch_due(job_id, now + rt.settings.poll_lease_seconds)
        yield job_id, Next("poll", token=job.poll_token, reason="overdue")
