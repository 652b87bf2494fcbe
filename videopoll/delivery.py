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

from videopoll import transitions
from videopoll.download import stream
from videopoll.errors import DeliveryError
from videopoll.models import JobRecord, JobStatus
from videopoll.runtime import Runtime
from videopoll.storage import video_key

log = logging.getLogger(__name__)

STAGE_LEASE_SECONDS = 300.0
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
    owner = rt.store.begin_stage(job_id, "store", STAGE_LEASE_SECONDS)
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

    def record(j: JobRecord) -> None:
        j.delivery.storage_key = stored.key
        j.delivery.storage_url = stored.url
        j.delivery.size_bytes = stored.size_bytes
        j.output_url = None  # the provider's signed URL has done its job: do not keep it

    applied = transitions.delivery_update(rt.store, job_id, record).applied
    rt.store.finish_stage(job_id, "store", owner)
    return "stored" if applied else "skipped"


def _renewing(rt: Runtime, job_id: str, owner: str, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Pass chunks through, renewing the stage lease so a long download is not run twice."""
    renew_every = STAGE_LEASE_SECONDS / 3
    last = time.monotonic()
    for chunk in chunks:
        if time.monotonic() - last >= renew_every:
            if not rt.store.renew_stage(job_id, "store", owner, STAGE_LEASE_SECONDS):
                raise DeliveryError("lost the store lease to another worker")
            last = time.monotonic()
        yield chunk


def notify_user(rt: Runtime, job_id: str) -> None:
    """Send the user their result (or the failure message) exactly once per job."""
    _notify_once(rt, job_id, "notify")


def notify_delayed(rt: Runtime, job_id: str) -> None:
    """Tell the user, once, that the job passed its normal attempts and is still checked."""
    job = rt.store.get(job_id)
    if job is not None and job.status is JobStatus.DELAYED:
        _notify_once(rt, job_id, "notify_delayed")


def _notify_once(rt: Runtime, job_id: str, stage: str) -> None:
    job = rt.store.get(job_id)
    if job is None:
        return
    owner = rt.store.begin_stage(job_id, stage, STAGE_LEASE_SECONDS)
    if owner is None:
        return
    try:
        message_id = rt.notifier.send(job)
    except BaseException:
        rt.store.abandon_stage(job_id, stage, owner)
        raise
    rt.store.finish_stage(job_id, stage, owner)
    if stage != "notify":
        return

    def record(j: JobRecord) -> None:
        j.delivery.notified_at = time.time()
        j.delivery.notify_message_id = message_id

    transitions.delivery_update(rt.store, job_id, record)


def record_result(rt: Runtime, job_id: str) -> None:
    """Mark a delivered job succeeded and append one analytics row per finished job."""
    job = transitions.succeed(rt.store, job_id).job
    if job is None or not job.status.terminal:
        return
    owner = rt.store.begin_stage(job_id, "record", STAGE_LEASE_SECONDS)
    if owner is not None:
        _append_result(rt, job)
        rt.store.finish_stage(job_id, "record", owner)
    if rt.store.stage_done(job_id, "record"):
        rt.store.outbox_done(job_id)


def _append_result(rt: Runtime, job: JobRecord) -> None:
    finished = job.finished_at or time.time()
    row: dict[str, str] = {
        "job_id": job.job_id,
        "model": job.model,
        "status": job.status.value,
        "error_code": job.error_code.value if job.error_code else "",
        "attempts": str(job.attempts),
        "total_seconds": f"{finished - job.created_at:.3f}",
        "storage_url": job.delivery.storage_url or "",
        "size_bytes": str(job.delivery.size_bytes or 0),
        "metadata": json.dumps(job.metadata),
    }
    rt.store.redis.xadd(
        f"{rt.store.prefix}:results", cast("dict[Any, Any]", row),
        maxlen=RESULTS_STREAM_MAXLEN, approximate=True,
    )
    log.info("job finished", extra={k: v for k, v in row.items() if k != "metadata"})
