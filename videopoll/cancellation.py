"""Stopping a canceled job's task at the provider, where the provider's API can.

The job is canceled on our side the moment the caller asks (``transitions.cancel``); this is
the best-effort follow-up that saves the provider's compute and the caller's credits. It runs
in a worker (the API does no provider I/O) and is safe to run again: asking a provider to
cancel a task twice changes nothing, so the outcome is returned, not remembered.
"""

from __future__ import annotations

import logging
from typing import Literal

from videopoll.errors import PermanentError
from videopoll.models import JobStatus
from videopoll.providers import PROVIDERS
from videopoll.runtime import Runtime

log = logging.getLogger(__name__)

Outcome = Literal["canceled", "refused", "not_applicable"]


def wants_remote_cancel(family: str, provider_task_id: str | None) -> bool:
    return provider_task_id is not None and family in PROVIDERS and PROVIDERS[family].can_cancel


def cancel_at_provider(rt: Runtime, job_id: str) -> Outcome:
    """Ask the provider to stop a canceled job's task. A ``TransientError`` from the adapter
    propagates: the task retries it."""
    job = rt.store.get(job_id)
    if (job is None or job.status is not JobStatus.CANCELED or job.provider_task_id is None
            or job.family not in PROVIDERS or not rt.provider(job.family).can_cancel):
        return "not_applicable"
    try:
        accepted = rt.provider(job.family).cancel(job.provider_task_id)
    except PermanentError:  # the provider will not (already finished, unknown task)
        accepted = False
    outcome: Outcome = "canceled" if accepted else "refused"
    rt.store.record_channel(job_id, "provider_cancel", {"status": outcome})
    log.info("provider task cancel", extra={"job_id": job_id, "family": job.family,
                                            "outcome": outcome})
    return outcome
