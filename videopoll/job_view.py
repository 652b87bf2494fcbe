"""The public shape of a job, for the API and for callbacks: user-facing words only."""

from __future__ import annotations

import datetime as dt
from typing import Any

from videopoll.messages import user_message
from videopoll.models import JobRecord, JobStatus


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).isoformat(timespec="milliseconds")


def job_view(job: JobRecord, link: str | None, status: JobStatus | None = None,
             view_url: str | None = None) -> dict[str, Any]:
    """``link`` is made by the caller at read time (public, presigned or ``/videos/``): never
    the storage location itself, which may be a server path or expire. ``view_url`` (the
    status page's signed link, API answers only) is added when given."""
    status = status or job.status
    extra = {"viewUrl": view_url} if view_url else {}
    return {
        "jobId": job.job_id,
        "status": status.value,
        "message": user_message(status, job.error_code),
        "model": job.model,
        "attempts": job.attempts,
        "maxAttempts": job.max_attempts,
        "nextPollAt": iso(job.next_poll_at) if not status.terminal else None,
        "providerTaskId": job.provider_task_id,
        "outputUrl": link,
        "errorCode": job.error_code.value if job.error_code else None,
        "progress": job.progress,
        "createdAt": iso(job.created_at),
        "updatedAt": iso(job.updated_at),
        "metadata": job.metadata,
        "parentJobId": job.parent_job_id,
        **extra,
    }
