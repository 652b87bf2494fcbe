"""The poll task and the sweeper task."""

from __future__ import annotations

import time
from typing import Any

from videopoll import cancellation, polling, sweeper
from videopoll.celery_app import app
from videopoll.errors import TransientError
from videopoll.poll_messages import POLL_TASK, publish_poll
from videopoll.polling import Next
from videopoll.runtime import get_runtime
from videopoll.tasks.deliver import finish, notify_delayed, start_delivery, update_progress


@app.task(name=POLL_TASK, ignore_result=True)
def poll_job(job_id: str, attempt: int) -> None:
    """Run the poll scheduled as ``attempt`` (the job's fencing token) and plan the next."""
    rt = get_runtime()
    carry_out(job_id, polling.advance(rt, job_id, attempt))


@app.task(name="videopoll.cancel_provider_task", bind=True, max_retries=3,
          ignore_result=True)
def cancel_provider_task(self: Any, job_id: str) -> None:
    """Stop a canceled job's task at the provider (best effort, bounded retries)."""
    try:
        cancellation.cancel_at_provider(get_runtime(), job_id)
    except TransientError as exc:
        raise self.retry(exc=exc, countdown=5 * (self.request.retries + 1)) from exc


@app.task(name="videopoll.sweep", ignore_result=True)
def sweep() -> int:
    """Re-enqueue overdue, delayed and stuck jobs. Runs from beat."""
    rt = get_runtime()
    count = 0
    for job_id, step in sweeper.sweep(rt):
        carry_out(job_id, step)
        count += 1
    rt.store.sweep_ran(time.time())
    return count


def carry_out(job_id: str, step: Next) -> None:
    if step.notify_delayed:
        notify_delayed.delay(job_id)
    if step.progress:
        update_progress.delay(job_id, step.progress)
    if step.action == "poll" and not step.queued:  # a queued one went with the record
        publish_poll(get_runtime(), job_id, step.token, step.countdown)
    elif step.action == "deliver":
        start_delivery(job_id)
    elif step.action == "finish":
        finish(job_id)
