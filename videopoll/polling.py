"""One poll turn as a plain function: claim the attempt, ask the provider, decide what is next.

The Celery task around it stays thin: it calls ``advance`` and carries out the returned
``Next`` (schedule the next attempt, start delivery, tell the user, or stop).

Why a fresh ``apply_async`` per attempt rather than ``self.retry``: every message must carry the
fencing token it was scheduled for (invariant 2), the countdown varies per attempt and per
``Retry-After``, and "not ready yet" is not an error. ``retry`` would tie the budget to Celery's
``max_retries`` and count rate-limit waits as attempts; the job record owns the budget instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from videopoll.errors import PermanentError, RateLimitedError, TransientError
from videopoll.models import ErrorCode, JobRecord, JobStatus, PollResult, PollState
from videopoll.normalizers import normalize
from videopoll.providers import get_model
from videopoll.redact import redact
from videopoll.runtime import Runtime

log = logging.getLogger(__name__)

SUBMIT_BACKOFF_MAX = 60.0


@dataclass(frozen=True)
class Next:
    """What the task should do after this turn."""

    action: Literal["poll", "deliver", "finish", "stop"]
    token: int = 0
    countdown: float = 0.0
    reason: str = ""


def advance(rt: Runtime, job_id: str, token: int) -> Next:
    """Run the poll (or, for a generate job, the submit) scheduled as ``token``."""
    job = rt.store.claim(job_id, token)
    if job is None:
        return Next("stop", reason="stale, duplicate or finished")
    if time.time() >= job.deadline_at:
        return fail(rt, job_id, ErrorCode.PROVIDER_TIMEOUT, "hard deadline reached")
    wait = rt.limiter.acquire(job.family)
    if wait > 0:
        return _reschedule(rt, job_id, lambda j: None, countdown=wait, reason="local rate limit")
    provider = rt.provider(job.family)
    try:
        if job.provider_task_id is None:
            return _submit(rt, job)
        result = normalize(provider.fetch(job.provider_task_id))
    except PermanentError as exc:
        return fail(rt, job_id, ErrorCode(exc.code), exc.provider_message)
    except RateLimitedError as exc:
        return _reschedule(
            rt, job_id, _count("rate_limited"), countdown=_after(rt, job, exc.retry_after),
            reason="provider rate limit",
        )
    except TransientError as exc:
        log.warning(
            "transient provider error",
            extra={"job_id": job_id, "reason": exc.reason, "sample": redact(exc.sample, 200)},
        )
        return _reschedule(rt, job_id, _count("transient_errors", attempt=True), reason=exc.reason)
    return _apply(rt, job_id, result)


def _submit(rt: Runtime, job: JobRecord) -> Next:
    assert job.spec is not None, "generate jobs carry their spec"
    provider = rt.provider(job.family)
    if _commit(rt, job.job_id, lambda j: setattr(j, "status", JobStatus.VALIDATING)) is None:
        return Next("stop", reason="ended")
    try:
        task_id = provider.submit(get_model(job.model), job.spec, callback_url=None)
    except PermanentError as exc:
        return fail(rt, job.job_id, ErrorCode(exc.code), exc.provider_message)
    except TransientError as exc:
        backoff = min(SUBMIT_BACKOFF_MAX, 2.0 ** (job.transient_errors + 1))
        retry_after = getattr(exc, "retry_after", None)
        return _reschedule(
            rt, job.job_id, _count("transient_errors"),
            countdown=max(backoff, retry_after or 0.0), reason=f"submit: {exc.reason}",
        )

    def started(j: JobRecord) -> None:
        j.provider_task_id = task_id
        j.status = JobStatus.RUNNING

    return _reschedule(rt, job.job_id, started, countdown=rt.settings.countdown_for(1))


def _apply(rt: Runtime, job_id: str, result: PollResult) -> Next:
    """Turn one normalized provider answer into the job's next state."""
    if result.state is PollState.FAILED:
        code = result.error_code or ErrorCode.UNKNOWN_PROVIDER_ERROR
        return fail(rt, job_id, code, result.provider_message, polled=True)
    if result.state is PollState.SUCCEEDED and result.output_urls:
        def ready(j: JobRecord) -> None:
            j.attempts += 1
            j.status = JobStatus.DELIVERING
            j.output_url = result.output_urls[0]
            j.progress = 100
        return Next("deliver") if _commit(rt, job_id, ready) else Next("stop", reason="ended")
    if result.state is PollState.SUCCEEDED:  # done but no usable URL yet
        job = _commit(rt, job_id, _count("missing_output_polls", attempt=True))
        if job is not None and job.missing_output_polls >= rt.settings.max_missing_output_polls:
            return fail(rt, job_id, ErrorCode.OUTPUT_MISSING, "success without an output URL")
        return _reschedule(rt, job_id, lambda j: None, reason="no output URL yet")

    def running(j: JobRecord) -> None:
        j.attempts += 1
        j.progress = result.progress if result.progress is not None else j.progress
        if j.status in (JobStatus.QUEUED, JobStatus.VALIDATING):
            j.status = JobStatus.RUNNING

    return _reschedule(rt, job_id, running)


def fail(
    rt: Runtime, job_id: str, code: ErrorCode, provider_message: str = "", polled: bool = False
) -> Next:
    """Mark the job failed; the task then tells the user and records the outcome.

    ``polled`` counts the provider answer that brought the failure as an attempt.
    """
    def failed(j: JobRecord) -> None:
        j.attempts += int(polled)
        j.status = JobStatus.FAILED
        j.error_code = code
        j.provider_message = redact(provider_message)
        j.next_poll_at = None

    return Next("finish", reason=code.value) if _commit(rt, job_id, failed) else Next("stop")


def _reschedule(
    rt: Runtime,
    job_id: str,
    mutate: Callable[[JobRecord], None],
    countdown: float | None = None,
    reason: str = "",
) -> Next:
    """Apply ``mutate`` and plan the next turn in the same write.

    Past ``max_attempts`` the job goes ``delayed`` and no message is sent: the sweeper polls
    it every ``DELAYED_INTERVAL_SECONDS`` until the hard deadline.
    """
    plan: list[Next] = []

    def step(j: JobRecord) -> None:
        mutate(j)
        now = time.time()
        if j.provider_task_id is not None and j.attempts >= j.max_attempts:
            if j.status is not JobStatus.DELAYED:
                j.status = JobStatus.DELAYED
            wait = max(countdown or 0.0, rt.settings.delayed_interval_seconds)
            j.next_poll_at = now + wait
            plan.append(Next("stop", reason="delayed: the sweeper takes over"))
            return
        wait = countdown if countdown is not None else rt.settings.countdown_for(j.attempts + 1)
        j.next_poll_at = now + wait
        plan.append(Next("poll", token=j.poll_token, countdown=wait, reason=reason))

    return plan[0] if _commit(rt, job_id, step) and plan else Next("stop", reason="ended")


def _commit(rt: Runtime, job_id: str, mutate: Callable[[JobRecord], None]) -> JobRecord | None:
    """Apply ``mutate``; ``None`` if the job ended (canceled) since it was claimed."""
    applied: list[bool] = []

    def wrapped(j: JobRecord) -> None:
        mutate(j)
        applied.append(True)

    job = rt.store.update(job_id, wrapped)
    return job if applied else None


def _count(field: str, attempt: bool = False) -> Callable[[JobRecord], None]:
    def bump(j: JobRecord) -> None:
        setattr(j, field, getattr(j, field) + 1)
        if attempt and field != "attempts":
            j.attempts += 1
    return bump


def _after(rt: Runtime, job: JobRecord, retry_after: float | None) -> float:
    """Honour ``Retry-After``; without one, back off from the normal interval."""
    if retry_after is not None:
        return max(retry_after, 0.1)
    backoff: float = rt.settings.countdown_for(job.attempts + 1) * min(2**job.rate_limited, 8)
    return backoff
