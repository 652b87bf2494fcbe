"""Delivery as a canvas chain of single-purpose tasks that pass only the job id."""

from __future__ import annotations

import logging
from typing import Any

import redis
from celery import chain
from celery.exceptions import Ignore

from videopoll import delivery, notify
from videopoll.celery_app import app
from videopoll.errors import DeliveryError, NotifyError
from videopoll.models import ErrorCode, JobStatus
from videopoll.polling import fail
from videopoll.runtime import Runtime, get_runtime
from videopoll.webhooks import build_payload, message_id, retry_delay, send_callback

log = logging.getLogger(__name__)

STORE_MAX_RETRIES = 5
NOTIFY_MAX_RETRIES = 5
DELIVERING = frozenset({JobStatus.DELIVERING})


def start_delivery(job_id: str) -> None:
    chain(
        fetch_and_store.si(job_id), notify_user.si(job_id), record_result.si(job_id)
    ).apply_async()


def finish(job_id: str) -> None:
    """Tell the user and record a job that ended without a video."""
    chain(notify_user.si(job_id), record_result.si(job_id)).apply_async()


def _backoff(retries: int, retry_after: float | None = None) -> float:
    """Exponential with jitter (jobs that failed together do not retry in one second)."""
    return retry_delay(retries, retry_after)


def _end_delivery(job_id: str, code: ErrorCode, reason: str) -> None:
    """A stage gave up: the job fails (once) and the failure chain tells the user."""
    if fail(get_runtime(), job_id, code, reason, only_from=DELIVERING).action == "finish":
        finish(job_id)


@app.task(name="videopoll.fetch_and_store", bind=True, max_retries=STORE_MAX_RETRIES)
def fetch_and_store(self: Any, job_id: str) -> None:
    try:
        outcome = delivery.store_output(get_runtime(), job_id)
    except DeliveryError as exc:
        if exc.permanent or self.request.retries >= STORE_MAX_RETRIES:
            code = ErrorCode(exc.code) if exc.code else ErrorCode.DELIVERY_FAILED
            _end_delivery(job_id, code, exc.reason)
            raise Ignore() from exc  # stops this chain; the failure chain tells the user
        raise self.retry(countdown=_backoff(self.request.retries), exc=exc) from exc
    if outcome != "stored":
        raise Ignore()  # another worker carries this delivery on, or the job ended


@app.task(name="videopoll.notify_user", bind=True, max_retries=NOTIFY_MAX_RETRIES)
def notify_user(self: Any, job_id: str) -> None:
    rt = get_runtime()
    # Only a worker that dies in between leaves "started" without "ended": the sweeper counts
    # those re-runs, not the ones of a chain that is merely queued (or retrying).
    _mark(rt, job_id, "started")
    try:
        _notify_user(self, rt, job_id)
    finally:
        _mark(rt, job_id, "ended")


def _mark(rt: Runtime, job_id: str, mark: str) -> None:
    """Best effort: without the mark a re-run only counts or not, and the task goes on."""
    try:
        rt.store.mark_chain(job_id, mark)
    except redis.RedisError as exc:
        log.warning("chain mark %s not written: %s", mark, type(exc).__name__,
                    extra={"job_id": job_id})


def _notify_user(self: Any, rt: Runtime, job_id: str) -> None:
    try:
        complete = notify.notify_user(rt, job_id)
    except Exception as exc:  # a notifier fault must not lose the job: retry, then decide
        if self.request.retries < NOTIFY_MAX_RETRIES:
            wait = _backoff(self.request.retries, getattr(exc, "retry_after", None))
            raise self.retry(countdown=wait, exc=exc) from exc
        log.error("notifier gave up", extra={"job_id": job_id, "error": type(exc).__name__})
        job = rt.store.get(job_id)
        if (job is not None and job.status is JobStatus.DELIVERING
                and not notify.any_channel_reached(rt, job_id)):
            # nobody could be told: the delivery failed, told once more on the failure chain
            _end_delivery(job_id, ErrorCode.DELIVERY_FAILED, f"notifier: {type(exc).__name__}")
            raise Ignore() from exc
        # someone was told (or the job already ended): record it, so the chain ends
        return
    if not complete:
        raise Ignore()  # another worker is sending; its chain or a re-delivery finishes


@app.task(name="videopoll.notify_delayed", bind=True, max_retries=3)
def notify_delayed(self: Any, job_id: str) -> None:
    try:
        notify.notify_delayed(get_runtime(), job_id)
    except Exception as exc:  # a progress note is worth a few tries, not a failed job
        if self.request.retries < 3:
            raise self.retry(countdown=_backoff(self.request.retries), exc=exc) from exc
        log.warning("could not send the delayed notice", extra={"job_id": job_id})


@app.task(name="videopoll.update_progress", ignore_result=True)
def update_progress(job_id: str, text: str) -> None:
    """Edit the job's progress message in place; a lost update is only a stale line."""
    try:
        notify.update_progress(get_runtime(), job_id, text)
    except Exception:
        log.warning("progress message not updated", extra={"job_id": job_id})


@app.task(name="videopoll.record_result")
def record_result(job_id: str) -> None:
    delivery.record_result(get_runtime(), job_id)


@app.task(name="videopoll.forward_press", bind=True, max_retries=NOTIFY_MAX_RETRIES)
def forward_press(self: Any, job_id: str, action: str, chat_id: str) -> None:
    """Tell the caller a button was pressed (Publish, Regenerate): a signed ``video.button``."""
    rt = get_runtime()
    job = rt.store.get(job_id)
    if job is None or not job.callback_url:
        return
    view = {"jobId": job_id, "action": action, "chatId": chat_id, "model": job.model}
    try:
        send_callback(job.callback_url, "button", build_payload(view, "button"),
                      rt.settings.secret("callback_secret"), rt.settings.callback_timeout_seconds,
                      rt.settings.allow_private_urls, msg_id=message_id(job_id, "button", action),
                      require_signature=rt.settings.callback_require_signature)
    except NotifyError as exc:
        if exc.permanent or self.request.retries >= NOTIFY_MAX_RETRIES:
            log.warning("button press not forwarded", extra={"job_id": job_id,
                                                             "reason": exc.reason})
            return
        raise self.retry(countdown=retry_delay(self.request.retries, exc.retry_after),
                         exc=exc) from exc
