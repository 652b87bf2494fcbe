"""Delivery as a canvas chain of single-purpose tasks that pass only the job id."""

from __future__ import annotations

from typing import Any

from celery import chain
from celery.exceptions import Ignore

from videopoll import delivery
from videopoll.celery_app import app
from videopoll.errors import DeliveryError
from videopoll.models import ErrorCode
from videopoll.polling import fail
from videopoll.runtime import get_runtime

STORE_MAX_RETRIES = 5


def start_delivery(job_id: str) -> None:
    chain(
        fetch_and_store.si(job_id), notify_user.si(job_id), record_result.si(job_id)
    ).apply_async()


def finish(job_id: str) -> None:
    """Tell the user and record a job that ended without a video."""
    chain(notify_user.si(job_id), record_result.si(job_id)).apply_async()


@app.task(name="videopoll.fetch_and_store", bind=True, max_retries=STORE_MAX_RETRIES)
def fetch_and_store(self: Any, job_id: str) -> None:
    rt = get_runtime()
    try:
        delivery.store_output(rt, job_id)
    except DeliveryError as exc:
        if exc.permanent or self.request.retries >= STORE_MAX_RETRIES:
            if fail(rt, job_id, ErrorCode.DELIVERY_FAILED, exc.reason).action == "finish":
                finish(job_id)
            raise Ignore() from exc  # stops this chain; the failure chain tells the user
        raise self.retry(countdown=min(2 ** self.request.retries * 2, 120), exc=exc) from exc


@app.task(name="videopoll.notify_user", bind=True, max_retries=5)
def notify_user(self: Any, job_id: str) -> None:
    try:
        delivery.notify_user(get_runtime(), job_id)
    except Exception as exc:  # a notifier fault must not lose the job: retry, then give up
        raise self.retry(countdown=min(2 ** self.request.retries * 2, 120), exc=exc) from exc


@app.task(name="videopoll.record_result")
def record_result(job_id: str) -> None:
    delivery.record_result(get_runtime(), job_id)
