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
from typing import Any, Literal

from videopoll import metrics, transitions
from videopoll.download import stream
from videopoll.errors import DeliveryError
from videopoll.media import MediaInfo, probe
from videopoll.models import JobRecord, JobStatus
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


@metrics.timed_stage("store")
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
    owner = rt.store.begin_stage(job_id, "store", stage_lease(rt), counted=True)
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
            headers = rt.provider(job.family).download_headers(job.output_url)
            chunks = stream(job.output_url, s.max_download_bytes, s.download_timeout_seconds,
                            s.allow_private_urls, headers)
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


@metrics.timed_stage("record")
def record_result(rt: Runtime, job_id: str) -> None:
    """Mark a delivered job succeeded and append one analytics row per finished job."""
    job = transitions.succeed(rt.store, job_id).job
    if job is None or not job.status.terminal:
        return
    owner = rt.store.begin_stage(job_id, "record", stage_lease(rt))
    if owner is not None and _append_result(rt, job, owner):
        metrics.job_finished(job)
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


def _append_result(rt: Runtime, job: JobRecord, owner: str) -> bool:
    """One analytics event, appended with the record stage's "done" in one step: a worker
    killed in between can neither lose it nor, on the re-run, append it twice."""
    event = analytics_event(rt, job)
    row = {k: json.dumps(v) if isinstance(v, dict | list) or v is None else str(v)
           for k, v in event.items()}
    appended = rt.store.finish_stage_with_event(
        job.job_id, "record", owner, f"{rt.store.prefix}:results", row, RESULTS_STREAM_MAXLEN)
    if appended:
        log.info("job finished", extra={"analytics": {k: v for k, v in event.items()
                                                      if k != "callerMetadata"}})
    return appended
