"""Telling people how a job went: every notification channel, each exactly once.

The notify stage of delivery (and the delayed notice and the in-place progress message) as
plain functions. Each channel sends under its own stage marker (see ``delivery``'s leases),
records a receipt before marking itself done, and a retry resends only what did not go out.

Once a message is sent, only the worker that sent it knows: if Redis is down when it writes
the receipt, it keeps trying while its lease still keeps every other worker off the channel,
instead of leaving the channel to be sent again. Only a worker killed between the send and
the receipt leaves a message that may go out twice (no chat API takes an idempotency key).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any

import redis

from videopoll import metrics, session
from videopoll.delivery import stage_lease
from videopoll.errors import NotifyError
from videopoll.job_view import job_view
from videopoll.messages import user_message
from videopoll.models import JobRecord, JobStatus
from videopoll.notifiers import Button, Event, Notice, Video
from videopoll.notifiers.telegram import TelegramNotifier
from videopoll.providers import PROVIDERS
from videopoll.redact import redact
from videopoll.runtime import Runtime
from videopoll.view_links import view_url

log = logging.getLogger(__name__)

# How long a sender waits out a Redis outage to write down what it sent (never past its lease)
RECEIPT_PATIENCE_SECONDS = 60.0


@metrics.timed_stage("notify")
def notify_user(rt: Runtime, job_id: str) -> bool:
    """Tell every channel how the job ended, each exactly once (a retry skips the done ones).

    ``False``: some channel is being sent by another worker right now (or by one that died,
    until its lease runs out); this chain stops, and that worker's chain, or the sweeper's
    re-delivery, finishes the job. Finishing it here could skip a channel for good.
    """
    job = rt.store.get(job_id)
    event = _final_event(job) if job is not None else None
    if job is None or event is None:
        return True
    return _notify(rt, job, event, "notify")


def notify_delayed(rt: Runtime, job_id: str) -> None:
    """Tell the user, once, that the job passed its normal attempts and is still checked."""
    job = rt.store.get(job_id)
    if job is not None and job.status is JobStatus.DELAYED:
        _notify(rt, job, "delayed", "delayed")


def _final_event(job: JobRecord) -> Event | None:
    if job.status in (JobStatus.DELIVERING, JobStatus.SUCCEEDED):
        return "succeeded"
    if job.status is JobStatus.FAILED:
        return "failed"
    if job.status is JobStatus.CANCELED:
        return "canceled"
    return None


def channel_stage(prefix: str, channel: str) -> str:
    """The stage marker of one channel's send (``prefix`` ``notify`` or ``delayed``): each
    channel is a stage of its own, so a re-run sends only what did not go out. The sweeper
    reads the same markers to tell a running chain from a dead one."""
    return f"{prefix}:{channel}"


def _notify(rt: Runtime, job: JobRecord, event: Event, prefix: str) -> bool:
    """Send ``event`` on every channel not yet done; raise the first retryable failure.

    ``False`` when a channel is held by another worker (see ``notify_user``).
    """
    notice = notice_for(rt, job, event)
    pending: NotifyError | None = None
    held = False
    for notifier in rt.notifiers:
        stage = channel_stage(prefix, notifier.name)
        owner, settle_by = _begin(rt, job.job_id, stage)
        if owner is None:
            held = held or not rt.store.stage_done(job.job_id, stage)
            continue
        if rt.store.channel_result(job.job_id, stage) is not None:
            # sent, but its sender could not mark the channel done: nothing is owed
            rt.store.finish_stage(job.job_id, stage, owner)
            continue
        skip = notifier.skip_reason(job, notice)
        if skip is not None:
            result: dict[str, Any] = {"status": "skipped", "reason": skip}
        else:
            try:
                result = {"status": "sent", "message_id": notifier.send(job, notice)}
            except NotifyError as exc:
                if not exc.permanent:
                    rt.store.abandon_stage(job.job_id, stage, owner)
                    pending = _longest_wait(pending, exc)
                    continue
                result = {"status": "failed", "error": redact(exc.reason)}
            except Exception as exc:  # a channel's own bug must not stop the others
                log.exception("notifier failed", extra={"job_id": job.job_id,
                                                         "channel": notifier.name})
                rt.store.abandon_stage(job.job_id, stage, owner)
                pending = pending or NotifyError(f"{notifier.name}: {type(exc).__name__}")
                continue
        receipt = {**result, "at": round(time.time(), 3)}
        _settle(rt, job.job_id, stage, owner, settle_by, functools.partial(
            rt.store.record_channel, job.job_id, stage, receipt))
        metrics.notification(prefix, notifier.name, result["status"])
    if pending is not None:
        raise pending
    return not held


def _begin(rt: Runtime, job_id: str, stage: str) -> tuple[str | None, float]:
    """Claim a send stage: its owner token (``None``: done or held elsewhere), and the
    monotonic time by which its record must be written (``_settle``): within
    ``RECEIPT_PATIENCE_SECONDS`` and 80% of the lease, counted from before the claim, so
    no other worker can take the stage while this one still tries."""
    lease = stage_lease(rt)
    leased_at = time.monotonic()
    owner = rt.store.begin_stage(job_id, stage, lease)
    return owner, leased_at + min(0.8 * lease, RECEIPT_PATIENCE_SECONDS)


def _settle(rt: Runtime, job_id: str, stage: str, owner: str, until: float,
            record: Callable[[], object]) -> None:
    """Write what the stage did (``record``: a receipt, a message id), then mark it done; a
    later run that finds the record sends nothing. Both writes can be repeated, so a Redis
    outage is waited out until ``until`` (``_begin``); then the error goes up, and the send
    may be repeated."""
    wait = 0.05
    while True:
        try:
            record()
            rt.store.finish_stage(job_id, stage, owner)
            return
        except (redis.ConnectionError, redis.TimeoutError):
            if time.monotonic() + wait > until:
                raise
            log.warning("job store unavailable after a send; trying again",
                        extra={"job_id": job_id, "stage": stage})
            time.sleep(wait)
            wait = min(2 * wait, 1.0)


def _longest_wait(pending: NotifyError | None, new: NotifyError) -> NotifyError:
    """The retry waits for the channel that asked to wait longest (a Slack 429's 30 s)."""
    if pending is None or (new.retry_after or 0) > (pending.retry_after or 0):
        return new
    return pending


def any_channel_reached(rt: Runtime, job_id: str) -> bool:
    results = rt.store.channel_results(job_id)
    return any(r.get("status") == "sent" for k, r in results.items() if k.startswith("notify:"))


def notice_for(rt: Runtime, job: JobRecord, event: Event) -> Notice:
    """The words, the link (made now) and the buttons for one event of one job."""
    status = JobStatus.SUCCEEDED if event == "succeeded" else job.status
    key = job.delivery.storage_key
    link = rt.storage.link_for(key, rt.settings.public_base_url) if key else None
    chat_id, chat_reason = chat_for(rt, job)
    video = None
    if key and event == "succeeded" and job.delivery.size_bytes is not None:
        video = Video(job.delivery.size_bytes, lambda: rt.storage.open(key))
    return Notice(
        event=event,
        text=user_message(status, job.error_code) if event != "delayed"
        else user_message(JobStatus.DELAYED),
        caption=caption_for(job) if event == "succeeded" else "",
        link=link,
        chat_id=chat_id,
        chat_reason=chat_reason,
        buttons=buttons_for(job) if event == "succeeded" else (),
        video=video,
        progress_message_id=progress_message_id(rt, job),
        view=job_view(job, link, status, view_url=_view_url(rt, job)),
    )


def _view_url(rt: Runtime, job: JobRecord) -> str | None:
    """The status page link for the caller's callback, where a person could open it."""
    base = rt.settings.public_base_url
    return view_url(rt.settings, job.job_id, base) if base else None


def chat_for(rt: Runtime, job: JobRecord) -> tuple[str | int | None, str]:
    """The job's chat: the request's ``chatId``, else the caller's session; else why not."""
    if job.chat_id is not None:
        return job.chat_id, ""
    info, reason = session.restore(rt.session_redis, rt.settings.session_key_template,
                                   job.session_id)
    if info is None:
        return None, reason
    return info.chat_id, "" if info.chat_id is not None else "the session has no chatId"


def progress_message_id(rt: Runtime, job: JobRecord) -> int | None:
    """The chat's in-place progress message for this job, once one was sent."""
    if not job.progress_messages:
        return None
    raw = rt.store.redis.get(progress_key(rt, job.job_id))
    return int(raw) if raw else None


def update_progress(rt: Runtime, job_id: str, text: str) -> None:
    """Keep one Telegram message per job up to date while it runs, instead of a stream."""
    job = rt.store.get(job_id)
    telegram = next((n for n in rt.notifiers if isinstance(n, TelegramNotifier)), None)
    if job is None or job.status.terminal or not job.progress_messages or telegram is None:
        return
    chat_id, _ = chat_for(rt, job)
    if chat_id is None:
        return
    existing = progress_message_id(rt, job)
    if existing is not None:
        telegram.edit(chat_id, existing, text)
        return
    owner, settle_by = _begin(rt, job_id, "progress")
    if owner is None:
        return  # another worker is sending the first one
    if progress_message_id(rt, job) is not None:  # sent, but not marked done
        rt.store.finish_stage(job_id, "progress", owner)
        return
    try:
        message_id = telegram.start_progress(chat_id, text)
    except BaseException:
        rt.store.abandon_stage(job_id, "progress", owner)
        raise
    _settle(rt, job_id, "progress", owner, settle_by, lambda: rt.store.redis.set(
        progress_key(rt, job_id), message_id, ex=rt.settings.result_retention_seconds))


# button action → rendition (``fetch``'s variant); labels in the user's words
RENDITION_ACTIONS = {"hd": "1080p", "uhd": "4k"}
RENDITION_LABELS = {"1080p": "1080p", "4k": "4K"}


def progress_key(rt: Runtime, job_id: str) -> str:
    return f"{rt.store.prefix}:progress:{job_id}"


def buttons_for(job: JobRecord) -> tuple[Button, ...]:
    """Publish and Regenerate for every video; Extend and the HD renditions where the family
    has them (Veo: extend, 1080p, 4K). A rendition job offers no further renditions."""
    buttons = [Button("Publish", "pub"), Button("Regenerate", "regen")]
    family = PROVIDERS.get(job.family)
    if family is not None and family.extends:
        buttons.append(Button("Extend", "ext"))
    if family is not None and job.variant is None:
        buttons += [Button(f"Get {RENDITION_LABELS.get(r, r)}", action)
                    for action, r in RENDITION_ACTIONS.items() if r in family.renditions]
    return tuple(buttons)


def caption_for(job: JobRecord) -> str:
    """Model, duration, resolution and generation time: what the original caption showed."""
    took = (job.finished_at or time.time()) - job.created_at
    parts = [job.model]
    media = job.delivery.media
    if media is not None and media.duration_seconds:
        parts.append(f"{media.duration_seconds:.0f}s")
    if media is not None and media.resolution:
        parts.append(media.resolution)
    size = job.delivery.size_bytes or 0
    if size >= 1_048_576:
        parts.append(f"{size / 1_048_576:.1f} MB")
    elif size:
        parts.append(f"{size / 1024:.0f} KB")
    parts.append(f"generated in {int(took // 60)}m {int(took % 60):02d}s")
    return " · ".join(parts)
