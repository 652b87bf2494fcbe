"""The delivery stages as plain functions, each safe to run again (invariant 4).

Each stage holds a marker in Redis while it works (an owner token with a lease, renewed while
a long download streams) and marks itself "done" after; a re-run finds "done" and skips, and a
run that finds the stage held by a live worker stops quietly, since that worker carries the
chain on. The stored video's key is derived from the job id, so an upload that finished before
a crash is found and reused, never repeated.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Iterator
from typing import Any, Literal, cast

from videopoll import session, transitions
from videopoll.download import stream
from videopoll.errors import DeliveryError, NotifyError
from videopoll.job_view import job_view
from videopoll.media import MediaInfo, probe
from videopoll.messages import user_message
from videopoll.models import JobRecord, JobStatus
from videopoll.notifiers import Button, Event, Notice, Video
from videopoll.notifiers.telegram import TelegramNotifier
from videopoll.redact import redact
from videopoll.runtime import Runtime
from videopoll.storage import FileStorage, video_key

log = logging.getLogger(__name__)

STAGE_LEASE_SECONDS = 300.0


def stage_lease(rt: Runtime) -> float:
    """A stage's lease never outlives the delivery lease: when the sweeper re-delivers a chain
    whose worker died, the new chain must find the dead worker's stages free."""
    return min(STAGE_LEASE_SECONDS, rt.settings.delivery_lease_seconds)
RESULTS_STREAM_MAXLEN = 100_000

StoreOutcome = Literal["stored", "held", "skipped"]


def storage_key(job: JobRecord) -> str:
    return video_key(job.model, job.job_id, job.created_at)


def object_metadata(job: JobRecord) -> dict[str, str]:
    """Tags on the stored object, so a video found in the bucket leads back to its job."""
    meta = {"job-id": job.job_id, "model": job.model}
    if job.provider_task_id:
        meta["provider-task-id"] = job.provider_task_id
    return meta


def store_output(rt: Runtime, job_id: str) -> StoreOutcome:
    """Stream the provider's video straight into storage, once.

    ``held``: another worker is storing it right now; ``skipped``: the job is no longer being
    delivered. Either way this chain stops and the other one (or nobody) carries on.
    """
    job = rt.store.get(job_id)
    if job is None or job.status is not JobStatus.DELIVERING:
        return "skipped"
    if job.delivery.storage_key:
        return "stored"
    owner = rt.store.begin_stage(job_id, "store", stage_lease(rt))
    if owner is None:
        return "stored" if rt.store.stage_done(job_id, "store") else "held"
    try:
        key = storage_key(job)
        stored = rt.storage.stat(key)
        if stored is None:
            if not job.output_url:
                raise DeliveryError("no output URL to download", permanent=True,
                                    code="output_missing")
            s = rt.settings
            chunks = stream(job.output_url, s.max_download_bytes, s.download_timeout_seconds,
                            s.allow_private_urls)
            stored = rt.storage.put_stream(key, _renewing(rt, job_id, owner, chunks),
                                           object_metadata(job))
    except BaseException:
        rt.store.abandon_stage(job_id, "store", owner)
        raise

    info = probe_stored(rt, stored.key, stored.size_bytes)

    def record(j: JobRecord) -> None:
        j.delivery.storage_key = stored.key
        j.delivery.storage_url = stored.url
        j.delivery.size_bytes = stored.size_bytes
        j.delivery.media = info
        j.output_url = None  # the provider's signed URL has done its job: do not keep it

    applied = transitions.delivery_update(rt.store, job_id, record).applied
    rt.store.finish_stage(job_id, "store", owner)
    return "stored" if applied else "skipped"


def probe_stored(rt: Runtime, key: str, size_bytes: int) -> MediaInfo:
    """Duration, resolution, codec and fps of the stored video; never fails a delivery."""
    storage = rt.storage
    target = str(storage.path(key)) if isinstance(storage, FileStorage) else storage.link_for(key)
    try:
        if not target:
            return MediaInfo(size_bytes=size_bytes)
        return probe(target, size_bytes, timeout=rt.settings.probe_timeout_seconds)
    except Exception:
        log.exception("probing the stored video failed", extra={"key": key})
        return MediaInfo(size_bytes=size_bytes)


def _renewing(rt: Runtime, job_id: str, owner: str, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Pass chunks through, renewing the stage lease so a long download is not run twice."""
    lease = stage_lease(rt)
    renew_every = lease / 3
    last = time.monotonic()
    for chunk in chunks:
        if time.monotonic() - last >= renew_every:
            if not rt.store.renew_stage(job_id, "store", owner, lease):
                raise DeliveryError("lost the store lease to another worker")
            last = time.monotonic()
        yield chunk


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


def _notify(rt: Runtime, job: JobRecord, event: Event, prefix: str) -> bool:
    """Send ``event`` on every channel not yet done; raise the first retryable failure.

    ``False`` when a channel is held by another worker (see ``notify_user``).
    """
    notice = notice_for(rt, job, event)
    pending: NotifyError | None = None
    held = False
    for notifier in rt.notifiers:
        stage = f"{prefix}:{notifier.name}"
        owner = rt.store.begin_stage(job.job_id, stage, stage_lease(rt))
        if owner is None:
            held = held or not rt.store.stage_done(job.job_id, stage)
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
        # the receipt is written before the stage is marked done: a resend checks it first
        rt.store.record_channel(job.job_id, stage, {**result, "at": round(time.time(), 3)})
        rt.store.finish_stage(job.job_id, stage, owner)
    if pending is not None:
        raise pending
    return not held


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
    chat_id, chat_reason = job.chat_id, ""
    if chat_id is None:
        info, chat_reason = session.restore(rt.session_redis, rt.settings.session_key_template,
                                            job.session_id)
        if info is not None:
            chat_id = info.chat_id
            chat_reason = "" if chat_id is not None else "the session has no chatId"
    raw_progress = (rt.store.redis.get(progress_key(rt, job.job_id))
                    if job.progress_messages else None)
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
        progress_message_id=int(raw_progress) if raw_progress else None,
        view=job_view(job, link, status),
    )


def update_progress(rt: Runtime, job_id: str, text: str) -> None:
    """Keep one Telegram message per job up to date while it runs, instead of a stream."""
    job = rt.store.get(job_id)
    telegram = next((n for n in rt.notifiers if isinstance(n, TelegramNotifier)), None)
    if job is None or job.status.terminal or not job.progress_messages or telegram is None:
        return
    notice = notice_for(rt, job, "delayed")
    if notice.chat_id is None:
        return
    if notice.progress_message_id is not None:
        telegram.edit(notice.chat_id, notice.progress_message_id, text)
        return
    owner = rt.store.begin_stage(job_id, "progress", stage_lease(rt))
    if owner is None:
        return  # another worker is sending the first one
    try:
        message_id = telegram.start_progress(notice.chat_id, text)
    except BaseException:
        rt.store.abandon_stage(job_id, "progress", owner)
        raise
    rt.store.redis.set(progress_key(rt, job_id), message_id,
                       ex=rt.settings.result_retention_seconds)
    rt.store.finish_stage(job_id, "progress", owner)


def progress_key(rt: Runtime, job_id: str) -> str:
    return f"{rt.store.prefix}:progress:{job_id}"


def buttons_for(job: JobRecord) -> tuple[Button, ...]:
    """Publish and Regenerate for every video; Extend and Get 1080p where the model has them."""
    buttons = [Button("Publish", "pub"), Button("Regenerate", "regen")]
    if job.family == "kie_veo":
        buttons += [Button("Extend", "ext"), Button("Get 1080p", "hd")]
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


def record_result(rt: Runtime, job_id: str) -> None:
    """Mark a delivered job succeeded and append one analytics row per finished job."""
    job = transitions.succeed(rt.store, job_id).job
    if job is None or not job.status.terminal:
        return
    owner = rt.store.begin_stage(job_id, "record", stage_lease(rt))
    if owner is not None:
        _append_result(rt, job)
        rt.store.finish_stage(job_id, "record", owner)
    if rt.store.stage_done(job_id, "record"):
        rt.store.outbox_done(job_id)


def analytics_event(rt: Runtime, job: JobRecord) -> dict[str, Any]:
    """One event per finished job: the fields the original workflow logged, and more.

    ``videoUrl`` is the permanent storage location, never a presigned link (it would expire
    and it grants access).
    """
    finished = job.finished_at or time.time()
    media = job.delivery.media or MediaInfo(size_bytes=job.delivery.size_bytes)
    price = rt.settings.model_prices.get(job.model)
    return {
        "jobId": job.job_id,
        "sessionId": job.session_id,
        "taskId": job.provider_task_id,
        "model": job.model,
        "status": job.status.value,
        "errorCode": job.error_code.value if job.error_code else None,
        "attempts": job.attempts,
        "totalTime": round(finished - job.created_at, 3),
        "videoUrl": job.delivery.storage_url,
        "metadata": {"duration": media.duration_seconds, "resolution": media.resolution,
                     "fileSize": media.size_bytes or job.delivery.size_bytes,
                     "codec": media.codec, "fps": media.fps},
        "cost": price if job.status is JobStatus.SUCCEEDED else (0.0 if price else None),
        "callerMetadata": job.metadata,
    }


def _append_result(rt: Runtime, job: JobRecord) -> None:
    event = analytics_event(rt, job)
    row = {k: json.dumps(v) if isinstance(v, dict | list) or v is None else str(v)
           for k, v in event.items()}
    rt.store.redis.xadd(
        f"{rt.store.prefix}:results", cast("dict[Any, Any]", row),
        maxlen=RESULTS_STREAM_MAXLEN, approximate=True,
    )
    log.info("job finished", extra={"analytics": {k: v for k, v in event.items()
                                                  if k != "callerMetadata"}})
