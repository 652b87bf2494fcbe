"""HTTP views: validate, write once to Redis, publish once, answer. No provider I/O here."""

from __future__ import annotations

import datetime as dt
import hmac
import ipaddress
import logging
from typing import Any

from flask import Blueprint, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, ValidationError

from videopoll import providers
from videopoll.api.errors import ApiError, validation_details
from videopoll.messages import user_message
from videopoll.models import ErrorCode, GenerateRequest, JobRecord, JobStatus, PollVideoRequest
from videopoll.runtime import Runtime
from videopoll.submission import generate_job_record, poll_job_record

log = logging.getLogger(__name__)
bp = Blueprint("api", __name__)
IDEMPOTENCY_KEY_MAX = 200


def runtime() -> Runtime:
    rt: Runtime = current_app.extensions["videopoll"]
    return rt


@bp.before_request
def authenticate() -> None:
    if request.endpoint == "api.healthz":
        return
    token = runtime().settings.secret("api_token")
    if token is None:
        remote = ipaddress.ip_address(request.remote_addr or "0.0.0.0")
        if not remote.is_loopback:
            raise ApiError(401, "unauthorized", "API_TOKEN is unset: only loopback may call")
        return
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        raise ApiError(401, "unauthorized", "missing or wrong bearer token")


def _body(model: type[BaseModel]) -> Any:
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", "send Content-Type: application/json")
    data = request.get_json(silent=True)
    if data is None:
        raise ApiError(400, "malformed_json", "the body is not valid JSON")
    if not isinstance(data, dict):
        raise ApiError(422, "validation_failed", "the body must be a JSON object",
                       [{"field": "body", "reason": "must be a JSON object"}])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        details = validation_details(exc)
        raise ApiError(422, "validation_failed", "invalid request", details) from exc


def _model(name: str) -> providers.ModelInfo:
    try:
        return providers.get_model(name)
    except KeyError:
        supported = ", ".join(providers.supported_models())
        raise ApiError(422, "validation_failed", "unknown model", [
            {"field": "model", "reason": f"unknown model {name!r}; supported: {supported}"}
        ]) from None


def _idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is not None and not (0 < len(key) <= IDEMPOTENCY_KEY_MAX):
        raise ApiError(422, "validation_failed", "invalid Idempotency-Key", [
            {"field": "Idempotency-Key", "reason": f"must be 1-{IDEMPOTENCY_KEY_MAX} characters"}
        ])
    return key


def _accept(job: JobRecord, message: str) -> ResponseReturnValue:
    rt = runtime()
    stored, created = rt.store.create(job)
    if not created:
        return jsonify({**job_view(stored), "message": "Already tracking this job"}), 200
    from videopoll.tasks.poll import poll_job  # the task module pulls in Celery

    delay = max(0.0, (job.next_poll_at or 0.0) - job.created_at)
    try:
        poll_job.apply_async((job.job_id, job.poll_token), countdown=delay)
    except Exception:  # the record is stored and due: the sweeper enqueues it later
        log.exception("publish failed; the sweeper will enqueue it", extra={"job_id": job.job_id})
    return jsonify({"jobId": job.job_id, "status": job.status.value, "message": message}), 202


@bp.post("/webhook/poll-video")
def poll_video() -> ResponseReturnValue:
    req: PollVideoRequest = _body(PollVideoRequest)
    model = _model(req.model)
    job = poll_job_record(req, model, runtime().settings, _idempotency_key())
    return _accept(job, "Polling started")


@bp.post("/jobs")
def create_job() -> ResponseReturnValue:
    req: GenerateRequest = _body(GenerateRequest)
    model = _model(req.model)
    problems = providers.validate_options(
        model, req.aspect_ratio, req.duration_seconds, len(req.image_urls)
    )
    if problems:
        details = [{"field": f, "reason": r} for f, r in problems]
        raise ApiError(422, "validation_failed", "the model does not support these options",
                       details)
    job = generate_job_record(req, model, runtime().settings, _idempotency_key())
    return _accept(job, "Generation queued")


@bp.get("/jobs/<job_id>")
def get_job(job_id: str) -> ResponseReturnValue:
    job = runtime().store.get(job_id)
    if job is None:
        raise ApiError(404, "not_found", f"no job {job_id!r}")
    return jsonify(job_view(job))


@bp.post("/jobs/<job_id>/cancel")
def cancel_job(job_id: str) -> ResponseReturnValue:
    applied: list[bool] = []

    def cancel(j: JobRecord) -> None:
        applied.append(True)
        j.status = JobStatus.CANCELED
        j.error_code = ErrorCode.CANCELED
        j.next_poll_at = None

    job = runtime().store.update(job_id, cancel)
    if job is None:
        raise ApiError(404, "not_found", f"no job {job_id!r}")
    if not applied:
        raise ApiError(409, "conflict", f"job already {job.status.value}")
    return jsonify(job_view(job))


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    rt = runtime()
    checks: dict[str, str] = {}
    try:
        rt.store.ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"error: {type(exc).__name__}"
    try:
        from videopoll.celery_app import app as celery_app

        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        checks["broker"] = "ok"
    except Exception as exc:
        checks["broker"] = f"error: {type(exc).__name__}"
    healthy = all(v == "ok" for v in checks.values())
    return jsonify({"status": "ok" if healthy else "unhealthy", "checks": checks}), (
        200 if healthy else 503
    )


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).isoformat(timespec="milliseconds")


def job_view(job: JobRecord) -> dict[str, Any]:
    """The public shape of a job: user-facing words, never raw provider errors."""
    return {
        "jobId": job.job_id,
        "status": job.status.value,
        "message": user_message(job.status, job.error_code),
        "model": job.model,
        "attempts": job.attempts,
        "maxAttempts": job.max_attempts,
        "nextPollAt": _iso(job.next_poll_at) if not job.status.terminal else None,
        "providerTaskId": job.provider_task_id,
        "outputUrl": job.delivery.storage_url,
        "errorCode": job.error_code.value if job.error_code else None,
        "progress": job.progress,
        "createdAt": _iso(job.created_at),
        "updatedAt": _iso(job.updated_at),
        "metadata": job.metadata,
    }
