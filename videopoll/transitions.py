"""The job state machine: every legal move of a job, each one committed transaction.

::

    queued ─▶ validating ─▶ running ─▶ delivering ─▶ succeeded
                              │  ▲          │
                              ▼  │          └──▶ failed (delivery error or budget spent)
                            delayed ──────────▶ failed (deadline)
    any non-terminal ──▶ failed | canceled

Each function applies one move through ``JobStore.update`` and returns what the *committed*
write decided. Nothing is recorded outside the transaction: the compare-and-set may run a
mutation twice, and only the answer of the attempt that committed counts (invariant 2). What
a write carries with it (the next poll's message, a provider token: ``store.Along``) is part
of the same Lua call, so it too happens once, and only if the write commits. Moves a poll
makes after its claim are *fenced*: they commit only while the poll token is still the one the
claim took and the state still allows polling, so a stale answer can never overwrite a newer
state (a late "running" must not turn ``delivering`` back into ``delayed``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

from videopoll.models import POLLABLE_STATUSES, ErrorCode, JobRecord, JobStatus
from videopoll.poll_messages import QueuedMessage
from videopoll.redact import redact
from videopoll.store import NOTHING_ALONG, REFUSE, Along, Change, JobStore, Refuse

T = TypeVar("T")

# Jobs submitted in one burst would otherwise poll in that burst at every interval, and a
# burst larger than the workers' capacity comes late each time round. The first poll is spread
# over half an interval either side of its plan, which levels a burst across a whole interval;
# later ones wander a little, so the spread holds (the mean wait stays the configured one).
FIRST_POLL_SPREAD = 0.5
CADENCE_JITTER = 0.1


def spread(seconds: float, jitter: float = CADENCE_JITTER) -> float:
    """The normal cadence's wait, moved by up to ``jitter`` of itself either way."""
    return seconds * random.uniform(1.0 - jitter, 1.0 + jitter)


@dataclass(frozen=True)
class Plan:
    """The next turn a committed reschedule planned."""

    action: Literal["poll", "delayed"]
    token: int
    countdown: float
    became_delayed: bool = False
    progress: str | None = None  # the text of the job's in-place progress message, if it has one
    queued: bool = False  # the write itself queued the poll message: nothing left to publish


def fenced(
    store: JobStore, job_id: str, token: int, mutate: Callable[[JobRecord], T | Refuse],
    along: Callable[[JobRecord, T], Along] | None = None,
) -> Change[T]:
    """Apply ``mutate`` only if the poll that holds ``token`` is still the job's current one."""
    def guarded(job: JobRecord) -> T | Refuse:
        if job.poll_token != token or job.status not in POLLABLE_STATUSES:
            return REFUSE
        return mutate(job)

    return store.update(job_id, guarded, along)


def begin_submit(store: JobStore, job_id: str, token: int) -> JobRecord | None:
    """Mark a submit as in flight before it is sent, so a hidden outcome is never resent."""
    def mark(job: JobRecord) -> bool | Refuse:
        if job.provider_task_id is not None or job.submit_started_at is not None:
            return REFUSE
        job.status = JobStatus.VALIDATING
        job.submit_started_at = time.time()
        job.submits += 1
        return True

    change = fenced(store, job_id, token, mark)
    return change.job if change.applied else None


def reschedule(
    store: JobStore,
    job_id: str,
    token: int,
    mutate: Callable[[JobRecord], None],
    wait_for: Callable[[JobRecord], float],
    delayed_interval: float,
    short_wait: bool = False,
    message_for: Callable[[int, float], QueuedMessage] | None = None,
) -> Plan | None:
    """Apply ``mutate`` and plan the next turn in the same write; ``None`` if fenced off.

    Past ``max_attempts`` the job goes ``delayed``: the sweeper polls it every
    ``delayed_interval`` until the deadline. ``short_wait`` (our own rate limiter turned the
    poll away) keeps the short wait and a message even then, so a backlog of delayed jobs
    drains at the limiter's pace instead of one slow interval per refusal.

    ``message_for(token, countdown)`` (a broker on the store's Redis) has the write queue the
    planned poll itself (``Plan.queued``): the record and its next message are one write,
    so a turn costs one round trip less and no committed plan can lose its message.
    """
    queues = message_for is not None

    def step(job: JobRecord) -> Plan:
        mutate(job)
        now = time.time()
        wait = wait_for(job)
        if job.provider_task_id is not None and job.attempts >= job.max_attempts:
            became = job.status is not JobStatus.DELAYED
            job.status = JobStatus.DELAYED
            if not short_wait:
                wait = max(wait, delayed_interval)
                job.next_poll_at = now + wait
                return Plan("delayed", job.poll_token, wait, became_delayed=became)
            job.next_poll_at = now + wait
            return Plan("poll", job.poll_token, wait, became_delayed=became, queued=queues)
        job.next_poll_at = now + wait
        return Plan("poll", job.poll_token, wait, progress=progress_text(job), queued=queues)

    def queue(job: JobRecord, plan: Plan) -> Along:
        if message_for is None or not plan.queued:
            return NOTHING_ALONG
        return Along(message=message_for(plan.token, plan.countdown))

    return fenced(store, job_id, token, step, queue).outcome


def progress_text(job: JobRecord) -> str | None:
    """"Generating… 3/15 (40%)" for jobs that asked for a progress message."""
    if not job.progress_messages or job.provider_task_id is None or job.attempts == 0:
        return None
    text = f"Generating… {job.attempts}/{job.max_attempts}"
    return f"{text} ({job.progress}%)" if job.progress is not None else text


def fail(
    store: JobStore,
    job_id: str,
    code: ErrorCode,
    provider_message: str = "",
    *,
    token: int | None = None,
    polled: bool = False,
    only_from: frozenset[JobStatus] | None = None,
) -> bool:
    """End a job as ``failed``; ``True`` only if this call's write ended it.

    ``token`` fences the move to the poll that holds it; ``only_from`` limits the states it
    may leave (delivery may only fail a job that is still delivering). ``polled`` counts the
    provider answer that brought the failure as an attempt.
    """
    def failed(job: JobRecord) -> bool | Refuse:
        if token is not None and job.poll_token != token:
            return REFUSE
        if only_from is not None and job.status not in only_from:
            return REFUSE
        if token is not None and job.status not in POLLABLE_STATUSES:
            return REFUSE
        job.attempts += int(polled)
        job.status = JobStatus.FAILED
        job.error_code = code
        job.provider_message = redact(provider_message)
        job.next_poll_at = None
        return True

    return store.update(job_id, failed).applied


def cancel(store: JobStore, job_id: str) -> Change[bool]:
    """Cancel a job that has not finished; the committed outcome says whether it did."""
    def canceled(job: JobRecord) -> bool:
        job.status = JobStatus.CANCELED
        job.error_code = ErrorCode.CANCELED
        job.next_poll_at = None
        return True

    return store.update(job_id, canceled)


def start_delivery(
    store: JobStore, job_id: str, token: int, output_url: str, polled: bool = True
) -> bool:
    """A poll found the video: hand the job to the delivery chain."""
    def ready(job: JobRecord) -> bool:
        job.attempts += int(polled)
        job.status = JobStatus.DELIVERING
        job.output_url = output_url
        job.progress = 100
        job.next_poll_at = None
        job.delivery_started_at = time.time()
        job.consecutive_rate_limited = 0
        return True

    return fenced(store, job_id, token, ready).applied


def redeliver(
    store: JobStore, job_id: str, max_runs: int, budget_seconds: float, now: float,
    store_tries: int = 0,
) -> Literal["deliver", "exhausted"] | None:
    """The sweeper found delivery overdue: run it again, or end it once its budget is spent.

    An overdue chain is most often one queued behind a backlog, not a dead one. A re-run
    counts against ``max_runs`` only if a store attempt began since the sweeper last looked
    (``store_tries``, counted by the store stage itself): a chain that started and still did
    not finish. One that never ran is sent again, bounded by the budget in time.

    Once the video is stored, only the staged notify and record steps are owed: no re-run
    counts, and a spent budget ends the job ``succeeded`` (the finish chain then tells whoever
    was not told). Failing it would lose a stored video and could tell a user "failed" after
    "your video is ready".
    """
    def again(job: JobRecord) -> Literal["deliver", "exhausted"] | Refuse:
        if job.status is not JobStatus.DELIVERING:
            return REFUSE
        started = job.delivery_started_at or job.updated_at
        spent = now - started >= budget_seconds
        if job.delivery.storage_key:
            if spent:
                _mark_succeeded(job)
                return "exhausted"
            return "deliver"
        ran = store_tries > job.delivery_tries_seen
        job.delivery_tries_seen = max(job.delivery_tries_seen, store_tries)
        if spent or (ran and job.delivery_runs >= max_runs):
            job.status = JobStatus.FAILED
            job.error_code = ErrorCode.DELIVERY_FAILED
            job.provider_message = "delivery budget spent"
            return "exhausted"
        job.delivery_runs += int(ran)
        return "deliver"

    change: Change[Literal["deliver", "exhausted"]] = store.update(job_id, again)
    return change.outcome


def delivery_update(
    store: JobStore, job_id: str, mutate: Callable[[JobRecord], None]
) -> Change[bool]:
    """Record what a delivery stage did, while the job is still being delivered."""
    def record(job: JobRecord) -> bool | Refuse:
        if job.status is not JobStatus.DELIVERING:
            return REFUSE
        mutate(job)
        return True

    return store.update(job_id, record)


def succeed(store: JobStore, job_id: str) -> Change[bool]:
    """A delivered job (its video stored) ends ``succeeded``."""
    def done(job: JobRecord) -> bool | Refuse:
        if job.status is not JobStatus.DELIVERING or not job.delivery.storage_key:
            return REFUSE
        _mark_succeeded(job)
        return True

    return store.update(job_id, done)


def _mark_succeeded(job: JobRecord) -> None:
    job.status = JobStatus.SUCCEEDED
    job.delivery.recorded_at = time.time()


# --- what a poll turn changes on the record (committed by ``reschedule``) ------------------

def submitted(task_id: str, push_callbacks: bool) -> Callable[[JobRecord], None]:
    """validating → running: the provider took the submit and named its task."""
    def start(j: JobRecord) -> None:
        j.provider_task_id = task_id
        j.status = JobStatus.RUNNING
        j.submit_started_at = None
        j.consecutive_rate_limited = 0
        j.push_callbacks = push_callbacks
    return start


def answered_running(progress: int | None) -> Callable[[JobRecord], None]:
    """The provider says it is still working: one attempt used; queued → running."""
    def running(j: JobRecord) -> None:
        answered(j)
        j.progress = progress if progress is not None else j.progress
        if j.status in (JobStatus.QUEUED, JobStatus.VALIDATING):
            j.status = JobStatus.RUNNING
    return running


def answered(j: JobRecord) -> None:
    """The provider gave a real answer: one attempt used, and rate limiting is over."""
    j.attempts += 1
    j.consecutive_rate_limited = 0


def count(field: str) -> Callable[[JobRecord], None]:
    """Count an answer that used an attempt but brought no news (fault, no URL, not found)."""
    def bump(j: JobRecord) -> None:
        setattr(j, field, getattr(j, field) + 1)
        answered(j)
    return bump


def rate_limited(j: JobRecord) -> None:
    j.rate_limited += 1
    j.consecutive_rate_limited += 1


def limited_locally(j: JobRecord) -> None:
    j.consecutive_rate_limited += 1


def submit_refused(limited: bool) -> Callable[[JobRecord], None]:
    def refused(j: JobRecord) -> None:
        j.submit_started_at = None  # the provider provably did not take it: safe to resend
        if limited:
            rate_limited(j)
        else:
            j.transient_errors += 1
    return refused


def resubmit(j: JobRecord) -> None:
    j.attempts += 1
    j.provider_task_id = None
    j.submit_started_at = None
    j.status = JobStatus.VALIDATING


def deadline_code(job: JobRecord) -> ErrorCode:
    """Why a job that ran out of time failed: the provider never answered, or never let us ask."""
    if job.consecutive_rate_limited > 0:
        return ErrorCode.PROVIDER_RATE_LIMITED
    return ErrorCode.PROVIDER_TIMEOUT
