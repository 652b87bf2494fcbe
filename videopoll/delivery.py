"""The delivery stages as plain functions, each safe to run again (invariant 4).

Each stage holds a marker in Redis while it works ("running", with a lease) and marks itself
"done" after; a re-run finds "done" and skips. The stored video's key is derived from the job
id, so an upload that finished before a crash is found and reused, never repeated.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, cast

from videopoll.download import stream
from videopoll.errors import DeliveryError
from videopoll.models import JobRecord, JobStatus
from videopoll.runtime import Runtime

log = logging.getLogger(__name__)

STAGE_LEASE_SECONDS = 300.0
RESULTS_STREAM_MAXLEN = 100_000


def storage_key(job: JobRecord) -> str:
    return f"{job.job_id}.mp4"


def store_output(rt: Runtime, job_id: str) -> None:
    """Stream the provider's video straight into storage, once."""
    job = rt.store.get(job_id)
    if job is None or job.status is not JobStatus.DELIVERING or job.delivery.storage_key:
        return
    if not rt.store.begin_stage(job_id, "store", STAGE_LEASE_SECONDS):
        if rt.store.stage_done(job_id, "store"):
            return
        raise DeliveryError("another worker is storing this video")
    try:
        key = storage_key(job)
        stored = rt.storage.stat(key)
        if stored is None:
            assert job.output_url is not None
            s = rt.settings
            stored = rt.storage.put_stream(
                key,
                stream(job.output_url, s.max_download_bytes, s.download_timeout_seconds,
                       s.allow_private_urls),
            )
    except BaseException:
        rt.store.abandon_stage(job_id, "store")
        raise

    def record(j: JobRecord) -> None:
        j.delivery.storage_key = stored.key
        j.delivery.storage_url = stored.url
        j.delivery.size_bytes = stored.size_bytes

    rt.store.update(job_id, record)
    rt.store.finish_stage(job_id, "store")


def notify_user(rt: Runtime, job_id: str) -> None:
    """Send the user their result (or the failure message) exactly once per job."""
    job = rt.store.get(job_id)
    if job is None or not rt.store.begin_stage(job_id, "notify", STAGE_LEASE_SECONDS):
        return
    try:
        message_id = rt.notifier.send(job)
    except BaseException:
        rt.store.abandon_stage(job_id, "notify")
        raise
    rt.store.finish_stage(job_id, "notify")

    def record(j: JobRecord) -> None:
        j.delivery.notified_at = time.time()
        j.delivery.notify_message_id = message_id

    rt.store.update(job_id, record)


def record_result(rt: Runtime, job_id: str) -> None:
    """Mark a delivered job succeeded and append one analytics row per job."""
    def succeed(j: JobRecord) -> bool:
        if j.status is not JobStatus.DELIVERING or not j.delivery.storage_key:
            return False
        j.status = JobStatus.SUCCEEDED
        j.delivery.recorded_at = time.time()
        return True

    job = rt.store.update(job_id, succeed)
    if job is None or not job.status.terminal:
        return
    if not rt.store.begin_stage(job_id, "record", STAGE_LEASE_SECONDS):
        return
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
    rt.store.finish_stage(job_id, "record")
    log.info("job finished", extra={k: v for k, v in row.items() if k != "metadata"})
