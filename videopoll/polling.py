"""One poll turn as a plain function: claim the attempt, ask the provider, decide what is next.

The Celery task around it stays thin: it calls ``advance`` and carries out the returned
``Next`` (schedule the next attempt, start delivery, tell the user, or stop). The state moves
themselves live in ``transitions``; every one made after the claim is fenced on the token the
claim took, so a turn that was overtaken (a duplicate message, a sweeper re-enqueue, a newer
poll) commits nothing and reports ``stop``.

Why a fresh ``apply_async`` per attempt rather than ``self.retry``: every message must carry the
fencing token it was scheduled for (invariant 2), the countdown varies per attempt and per
``Retry-After``, and "not ready yet" is not an error. ``retry`` would tie the budget to Celery's
``max_retries`` and count rate-limit waits as attempts; the job record owns the budget instead.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from videopoll import metrics, transitions
from videopoll.errors import (
    PermanentError,
    RateLimitedError,
    SubmitOutcomeUnknownError,
    TaskNotFoundError,
    TransientError,
)
from videopoll.models import ErrorCode, JobRecord, JobStatus, PollResult, PollState
from videopoll.poll_messages import QueuedMessage, poll_message
from videopoll.providers import model_for
from videopoll.ratelimit import Bucket
from videopoll.redact import redact
from videopoll.runtime import Runtime

log = logging.getLogger(__name__)

SUBMIT_BACKOFF_MAX = 60.0
# A generate job whose task the provider itself timed out, or failed at its concurrency
# limit, gets one fresh submit: the first task is dead and produced nothing, so this is not
# paying twice for one video.
MAX_SUBMITS = 2
RESUBMITTED = (ErrorCode.PROVIDER_TIMEOUT, ErrorCode.PROVIDER_RATE_LIMITED)


@dataclass(frozen=True)
class Next:
    """What the task should do after this turn."""

    action: Literal["poll", "deliver", "finish", "stop"]
    token: int = 0
    countdown: float = 0.0
    reason: str = ""
    notify_delayed: bool = False  # the job just went ``delayed``: tell the user once
    progress: str | None = None  # new text for the job's in-place progress message
    queued: bool = False  # the poll's message is already on the broker: do not publish it


def advance(rt: Runtime, job_id: str, token: int) -> Next:
    """Run the poll (or, for a generate job, the submit) scheduled as ``token``."""
    def bucket_for(job: JobRecord) -> Bucket | None:
        if time.time() >= job.deadline_at:  # this turn ends the job: no provider call
            return None
        return rt.bucket(job.family, _call_kind(job))

    # the claim takes the provider token in the same write: one round trip, not two
    turn = rt.store.claim_turn(job_id, token, bucket_for)
    if turn is None:
        return Next("stop", reason="stale, duplicate or finished")
    job, wait_ms = turn
    mine = job.poll_token
    if time.time() >= job.deadline_at:
        return fail(rt, job_id, transitions.deadline_code(job), "hard deadline reached",
                    token=mine)
    wait = rt.limiter.delay_for(wait_ms)
    if wait > 0:
        metrics.rate_limited(job.family, _call_kind(job), "local")
        return _reschedule(rt, job_id, mine, transitions.limited_locally, countdown=wait,
                           reason="local rate limit", short_wait=True)
    if _call_kind(job) == "submit":
        return _submit(rt, job, mine)
    return _poll(rt, job, mine)


def _call_kind(job: JobRecord) -> Literal["submit", "status"]:
    """A generate job without a provider task still has to be submitted."""
    return "submit" if job.provider_task_id is None else "status"


def _poll(rt: Runtime, job: JobRecord, mine: int) -> Next:
    assert job.provider_task_id is not None
    job_id = job.job_id
    try:
        provider = rt.provider(job.family)
        with metrics.provider_call(job.family, "status") as call:
            answer = provider.status_of(job)
            result = call.answered(provider.normalize(answer))
    except PermanentError as exc:
        return fail(rt, job_id, _code(exc.code), exc.provider_message, token=mine, polled=True)
    except RateLimitedError as exc:
        return _reschedule(rt, job_id, mine, transitions.rate_limited,
                           countdown=_after(rt, job, exc.retry_after), reason="provider rate limit")
    except TaskNotFoundError as exc:
        return _not_found(rt, job, mine, exc)
    except TransientError as exc:
        log.warning("transient provider error", extra={
            "job_id": job_id, "reason": exc.reason, "sample": redact(exc.sample, 200)})
        return _reschedule(rt, job_id, mine, transitions.count("transient_errors"),
                           reason=exc.reason)
    except Exception as exc:  # no provider answer may crash a poll: count it and go on
        log.exception("unexpected error polling the provider", extra={"job_id": job_id})
        return _reschedule(rt, job_id, mine, transitions.count("transient_errors"),
                           reason=f"unexpected {type(exc).__name__}")
    return _apply(rt, job, mine, result)


def _submit(rt: Runtime, job: JobRecord, mine: int) -> Next:
    """Send the generation once. An unknown outcome ends the job rather than pay twice."""
    assert job.spec is not None, "generate jobs carry their spec"
    if job.submit_started_at is not None:
        # An earlier turn sent (or was sending) the submit and never learned the answer: a
        # worker crash or a lost write. The provider may be generating and billing already.
        return fail(rt, job.job_id, ErrorCode.SUBMIT_UNCONFIRMED,
                    "an earlier submit's outcome is unknown", token=mine)
    if transitions.begin_submit(rt.store, job.job_id, mine) is None:
        return Next("stop", reason="ended or overtaken")
    callback_url = callback_url_for(rt, job.family)
    try:
        with metrics.provider_call(job.family, "submit"):
            task_id = rt.provider(job.family).submit(model_for(job.family, job.model),
                                                     job.spec, callback_url=callback_url)
    except SubmitOutcomeUnknownError as exc:
        return fail(rt, job.job_id, ErrorCode.SUBMIT_UNCONFIRMED, exc.reason, token=mine)
    except PermanentError as exc:
        return fail(rt, job.job_id, _code(exc.code), exc.provider_message, token=mine)
    except TransientError as exc:  # provably not accepted (refused, 429, maintenance): resend
        backoff = min(SUBMIT_BACKOFF_MAX, 2.0 ** (job.transient_errors + 1))
        retry_after = exc.retry_after if isinstance(exc, RateLimitedError) else None
        return _reschedule(
            rt, job.job_id, mine, transitions.submit_refused(isinstance(exc, RateLimitedError)),
            countdown=max(backoff, retry_after or 0.0), reason=f"submit: {exc.reason}",
        )
    except Exception:
        log.exception("unexpected error submitting", extra={"job_id": job.job_id})
        return fail(rt, job.job_id, ErrorCode.SUBMIT_UNCONFIRMED, "unexpected submit error",
                    token=mine)

    rt.store.link_task(job.family, task_id, job.job_id)  # a callback names only the task
    step = _reschedule(rt, job.job_id, mine,
                       transitions.submitted(task_id, push_callbacks=callback_url is not None),
                       countdown=rt.settings.countdown_for(1, callback_url is not None))
    if step.action == "stop":
        # Canceled while the submit was in flight: the provider task exists and is billed,
        # but no job owns it any more. Keep its id where an operator can find it.
        rt.store.record_orphan(job.job_id, job.family, task_id)
        log.warning("provider task created for a job that ended meanwhile",
                    extra={"job_id": job.job_id, "provider_task_id": task_id})
    return step


def _apply(rt: Runtime, job: JobRecord, mine: int, result: PollResult) -> Next:
    """Turn one normalized provider answer into the job's next state."""
    job_id = job.job_id
    if result.state is PollState.FAILED:
        code = result.error_code or ErrorCode.UNKNOWN_PROVIDER_ERROR
        if code in RESUBMITTED and job.kind == "generate" and job.submits < MAX_SUBMITS:
            # at once after a timeout; after a capacity failure, one poll interval later
            wait = 0.0 if code is ErrorCode.PROVIDER_TIMEOUT else rt.settings.countdown_for(1)
            return _reschedule(rt, job_id, mine, transitions.resubmit, countdown=wait,
                               reason=f"provider {code.value}: one fresh submit")
        return fail(rt, job_id, code, result.provider_message, token=mine, polled=True)
    if result.state is PollState.SUCCEEDED and result.output_urls:
        if transitions.start_delivery(rt.store, job_id, mine, result.output_urls[0]):
            return Next("deliver")
        return Next("stop", reason="ended or overtaken")
    if result.state is PollState.SUCCEEDED:  # done but no usable URL yet
        if job.missing_output_polls + 1 >= rt.settings.max_missing_output_polls:
            return fail(rt, job_id, ErrorCode.OUTPUT_MISSING, "success without an output URL",
                        token=mine, polled=True)
        return _reschedule(rt, job_id, mine, transitions.count("missing_output_polls"),
                           reason="no output URL yet")

    return _reschedule(rt, job_id, mine, transitions.answered_running(result.progress))


def _not_found(rt: Runtime, job: JobRecord, mine: int, exc: TaskNotFoundError) -> Next:
    """A task the provider does not know: brand new gets a grace, then the job fails fast."""
    known_for = time.time() - job.created_at
    if job.not_found_polls >= 1 and known_for >= rt.settings.task_not_found_grace_seconds:
        return fail(rt, job.job_id, ErrorCode.TASK_NOT_FOUND, exc.reason, token=mine,
                    polled=True)
    return _reschedule(rt, job.job_id, mine, transitions.count("not_found_polls"),
                       reason=exc.reason)


def fail(
    rt: Runtime, job_id: str, code: ErrorCode, provider_message: str = "", *,
    token: int | None = None, polled: bool = False,
    only_from: frozenset[JobStatus] | None = None,
) -> Next:
    """End the job ``failed``; ``finish`` (tell the user) only if this call ended it."""
    if transitions.fail(rt.store, job_id, code, provider_message, token=token, polled=polled,
                        only_from=only_from):
        return Next("finish", reason=code.value)
    return Next("stop", reason="ended or overtaken")


def _reschedule(
    rt: Runtime, job_id: str, mine: int, mutate: Callable[[JobRecord], None],
    countdown: float | None = None, reason: str = "", short_wait: bool = False,
) -> Next:
    """Apply ``mutate`` and plan the next turn in the same fenced write."""
    def wait_for(j: JobRecord) -> float:
        if countdown is not None:
            return countdown
        return transitions.spread(rt.settings.countdown_for(j.attempts + 1, j.push_callbacks))

    def message_for(token: int, countdown: float) -> QueuedMessage:
        return poll_message(job_id, token, countdown)

    plan = transitions.reschedule(
        rt.store, job_id, mine, mutate, wait_for, rt.settings.delayed_interval_seconds,
        short_wait=short_wait, message_for=message_for if rt.first_poll_in_create else None)
    if plan is None:
        return Next("stop", reason="ended or overtaken")
    if plan.action == "delayed":
        return Next("stop", reason="delayed: the sweeper takes over",
                    notify_delayed=plan.became_delayed)
    return Next("poll", token=plan.token, countdown=plan.countdown, reason=reason,
                notify_delayed=plan.became_delayed, progress=plan.progress, queued=plan.queued)


def callback_url_for(rt: Runtime, family: str) -> str | None:
    """Where the provider should push, when this service is reachable and the family pushes."""
    base = rt.settings.public_base_url
    provider = rt.provider(family)
    if not base or not provider.will_push():
        return None
    url = f"{base.rstrip('/')}/callbacks/{family}"
    secret = rt.settings.secret("callback_url_secret")
    if secret and not provider.proves_callbacks():
        url += f"?token={callback_url_token(secret, family)}"
    return url


def callback_url_token(secret: str, family: str) -> str:
    """The token in the callback URL of a family that does not sign its callbacks: only a
    caller who knows the URL we gave the provider can wake our polls."""
    return hmac.new(secret.encode(), f"callback:{family}".encode(), hashlib.sha256).hexdigest()


def _code(value: str) -> ErrorCode:
    try:
        return ErrorCode(value)
    except ValueError:
        return ErrorCode.UNKNOWN_PROVIDER_ERROR


def _after(rt: Runtime, job: JobRecord, retry_after: float | None) -> float:
    """Honour ``Retry-After``; without one, back off from the normal interval (at most 8 times)."""
    if retry_after is not None:
        return max(retry_after, 0.1)
    backoff: float = rt.settings.countdown_for(job.attempts + 1) * min(2**job.rate_limited, 8)
    return backoff
