"""HTTP views: validate, write once to Redis, publish once, answer. No provider I/O here."""

from __future__ import annotations

import hmac
import json
import logging
import time
from typing import Any

import redis
from flask import Blueprint, current_app, jsonify, request, send_file
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, ValidationError

from videopoll import buttons, metrics, providers, transitions
from videopoll.api.body import json_object, raw_json
from videopoll.api.caller import Idempotency, check_caller
from videopoll.api.errors import ApiError, store_unavailable, validation_details
from videopoll.cancellation import wants_remote_cancel
from videopoll.download import check_url
from videopoll.errors import CallbackRejected, DeliveryError
from videopoll.job_view import job_view as public_view
from videopoll.models import (
    POLLABLE_STATUSES,
    GenerateRequest,
    JobRecord,
    JobStatus,
    PollVideoRequest,
)
from videopoll.poll_messages import API_PUBLISH_RETRY, poll_message, publish_poll
from videopoll.polling import callback_url_token
from videopoll.providers.base import CallbackRequest
from videopoll.runtime import Runtime
from videopoll.storage import FileStorage
from videopoll.submission import generate_job_record, poll_job_record
from videopoll.view_links import view_url

log = logging.getLogger(__name__)
bp = Blueprint("api", __name__)
SWEEP_STALE_INTERVALS = 4
SWEEP_STALE_MIN_SECONDS = 30.0
CALLBACK_MAX_BYTES = 1024 * 1024  # a Replicate prediction carries its logs


def runtime() -> Runtime:
    rt: Runtime = current_app.extensions["videopoll"]
    return rt


@bp.before_request
def authenticate() -> None:
    # /videos/<key> links go to people (Telegram, Slack): the random job id in the key is the
    # capability, as with a presigned S3 link.
    # The Telegram webhook proves itself with its secret-token header instead.
    # Provider callbacks are verified by the provider's own signature (and can only wake a poll).
    if request.endpoint not in ("api.healthz", "api.video_file", "api.telegram_webhook",
                                "api.provider_callback"):
        check_caller(runtime().settings.secret("api_token"))


def _body(rt: Runtime, model: type[BaseModel]) -> Any:
    data = json_object(rt.settings.max_body_bytes)
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


def _check_urls(rt: Runtime, urls: list[tuple[str, str]]) -> None:
    """Refuse URLs we would later refuse to call or fetch (invariant 8), while the caller waits.

    Only a definite "no" is refused: a name that does not resolve right now is checked again
    when it is used.
    """
    if not urls:
        return
    allow_private = rt.settings.allow_private_urls
    details = []
    for field, url in urls:
        try:
            check_url(url, allow_private)
        except DeliveryError as exc:
            if exc.permanent:
                details.append({"field": field, "reason": exc.reason})
    if details:
        raise ApiError(422, "validation_failed", "refused URL", details)


def _store(rt: Runtime, job: JobRecord, idem: Idempotency) -> tuple[JobRecord, bool]:
    """Write the job (and, on a shared Redis, its first poll) once. A store fault after the
    command left is an unknown outcome."""
    try:
        return _create(rt, job)
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        log.warning("job store unavailable at submit: %s", type(exc).__name__,
                    extra={"job_id": job.job_id})
        how = ("retrying with the same Idempotency-Key is safe" if idem.raw else
               "retrying with the same taskId is safe" if job.kind == "poll" else
               "send an Idempotency-Key so that a retry cannot create it twice")
        raise store_unavailable(
            "the job store did not answer: the job may or may not have been stored; " + how
        ) from exc


def _create(rt: Runtime, job: JobRecord) -> tuple[JobRecord, bool]:
    """Store a new job and queue its first turn: in the same Lua call when the broker is the
    store's Redis, else by a publish after it (a lost publish is the sweeper's to redo).
    Concurrent submissions share one round trip (``group_commit``)."""
    countdown = max(0.0, (job.next_poll_at or 0.0) - job.created_at)
    if rt.first_poll_in_create:
        first = poll_message(job.job_id, job.poll_token, countdown)
        return rt.submissions.create(job, first)
    stored, created = rt.submissions.create(job)
    if created:
        _publish_poll(rt, job, countdown)
    return stored, created


def _accept(rt: Runtime, job: JobRecord, idem: Idempotency, message: str
            ) -> ResponseReturnValue:
    job.request_fingerprint = idem.fingerprint
    stored, created = _store(rt, job, idem)
    metrics.job_submitted(stored, created)
    if not created:
        idem.check_reuse(stored)
        return jsonify({**job_view(stored), "message": "Already tracking this job"}), 200
    # the one answer of the hot path, encoded without Flask's JSON provider
    body = json.dumps({"jobId": job.job_id, "status": job.status.value, "message": message})
    return current_app.response_class(body + "\n", 202, content_type="application/json")


def _publish_poll(rt: Runtime, job: JobRecord, countdown: float) -> None:
    """Send the poll for the job's current token. Only a hint: if the publish fails, the
    record is stored and due, and the sweeper (or the scheduled poll) enqueues it."""
    try:
        publish_poll(rt, job.job_id, job.poll_token, countdown, patient=False)
    except Exception:
        log.exception("poll not published; the sweeper will enqueue it",
                      extra={"job_id": job.job_id})


@bp.post("/webhook/poll-video")
def poll_video() -> ResponseReturnValue:
    rt = runtime()
    Idempotency.check_header()
    req: PollVideoRequest = _body(rt, PollVideoRequest)
    model = _model(req.model)
    _check_urls(rt, [("callbackUrl", str(req.callback_url))] if req.callback_url else [])
    idem = Idempotency("poll", req.session_id, req, rt.settings.secret("api_token"))
    job = poll_job_record(req, model, rt.settings, idem.scoped)
    return _accept(rt, job, idem, "Polling started")


@bp.post("/jobs")
def create_job() -> ResponseReturnValue:
    rt = runtime()
    Idempotency.check_header()
    req: GenerateRequest = _body(rt, GenerateRequest)
    model = _model(req.model)
    problems = providers.validate_options(
        model, req.aspect_ratio, req.duration_seconds, len(req.image_urls)
    )
    if problems:
        details = [{"field": f, "reason": r} for f, r in problems]
        raise ApiError(422, "validation_failed", "the model does not support these options",
                       details)
    urls = [(f"imageUrls.{i}", str(u)) for i, u in enumerate(req.image_urls)]
    _check_urls(rt, ([("callbackUrl", str(req.callback_url))] if req.callback_url else [])
                + urls)
    idem = Idempotency("generate", req.session_id, req, rt.settings.secret("api_token"))
    job = generate_job_record(req, model, rt.settings, idem.scoped)
    return _accept(rt, job, idem, "Generation queued")


@bp.get("/jobs/<job_id>")
def get_job(job_id: str) -> ResponseReturnValue:
    job = runtime().store.get(job_id)
    if job is None:
        raise ApiError(404, "not_found", f"no job {job_id!r}")
    return jsonify(job_view(job))


@bp.post("/jobs/<job_id>/cancel")
def cancel_job(job_id: str) -> ResponseReturnValue:
    change = transitions.cancel(runtime().store, job_id)
    if change.job is None:
        raise ApiError(404, "not_found", f"no job {job_id!r}")
    if not change.applied:
        raise ApiError(409, "conflict", f"job already {change.job.status.value}")
    try:  # tell the user and the caller now; the outbox sweep does it if this publish is lost
        from videopoll.tasks.deliver import finish

        finish(job_id)
    except Exception:
        log.exception("publish failed; the sweeper will finish it", extra={"job_id": job_id})
    if wants_remote_cancel(change.job.family, change.job.provider_task_id):
        try:  # stop the task at the provider too (best effort: the job is canceled already)
            from videopoll.tasks.poll import cancel_provider_task

            cancel_provider_task.apply_async((job_id,), retry=True,
                                              retry_policy=API_PUBLISH_RETRY)
        except Exception:
            log.exception("provider cancel not published", extra={"job_id": job_id})
    return jsonify(job_view(change.job))


@bp.get("/models")
def list_models() -> ResponseReturnValue:
    """The model names a request may use, each with the options it accepts."""
    return jsonify({"models": [
        {"model": name, "id": m.qualified, "family": m.family, "providerModel": m.remote_id,
         "durations": list(m.durations), "aspectRatios": list(m.aspect_ratios),
         "maxImages": m.max_images, "defaultDuration": m.default_duration,
         "pushCallbacks": providers.PROVIDERS[m.family].pushes_callbacks,
         "cancel": providers.PROVIDERS[m.family].can_cancel}
        for name, m in ((n, providers.get_model(n)) for n in providers.supported_models())
    ], "families": sorted(providers.PROVIDERS)})


@bp.post("/callbacks/<family>")
def provider_callback(family: str) -> ResponseReturnValue:
    """A provider says a task changed: poll that job now. The status API decides, so a forged
    or replayed callback can change nothing but the time of the next poll."""
    rt = runtime()
    if family not in providers.PROVIDERS:
        raise ApiError(404, "not_found", f"no provider family {family!r}")
    provider = rt.provider(family)
    _check_callback_token(rt, family, provider.proves_callbacks())
    limit = max(rt.settings.max_body_bytes, CALLBACK_MAX_BYTES)
    request.max_content_length = limit  # this route only: the app-wide cap is for submits
    raw, body = raw_json(limit)
    req = CallbackRequest(raw=raw, body=body,
                          headers={k.lower(): v for k, v in request.headers.items()},
                          query=request.args.to_dict(), now=time.time())
    try:
        outcome = provider.callback(req)
    except CallbackRejected as exc:
        raise ApiError(exc.status, "callback_rejected", exc.reason) from exc
    if outcome.task_id is None:
        return jsonify(outcome.reply or {"status": "ignored"}), 200
    job_id = rt.store.job_for_task(family, outcome.task_id)
    job = rt.store.get(job_id) if job_id else None
    reply = outcome.reply or {}
    if job is None or job.status not in POLLABLE_STATUSES or job.provider_task_id is None:
        # unknown, or no longer polled: nothing to do
        return jsonify({**reply, "status": "ignored"}), 200
    # the job's current token: whichever of this and the scheduled poll runs first wins the
    # fence, and the other is dropped without a provider call
    _publish_poll(rt, job, 0.0)
    return jsonify({**reply, "status": "accepted"}), 200


def _check_callback_token(rt: Runtime, family: str, signed: bool) -> None:
    """A family that does not sign its callbacks must bring back the URL token we gave it."""
    secret = rt.settings.secret("callback_url_secret")
    if signed or not secret:
        return
    given = request.args.get("token", "")
    if not hmac.compare_digest(given.encode(), callback_url_token(secret, family).encode()):
        raise ApiError(401, "callback_rejected", "missing or wrong callback URL token")


@bp.post("/telegram/webhook")
def telegram_webhook() -> ResponseReturnValue:
    """Button presses on delivered videos. The answer to the callback query rides on the
    webhook's own response (a Bot API method call), so this view makes no outbound call."""
    rt = runtime()
    secret = rt.settings.secret("telegram_webhook_secret")
    if not secret:
        raise ApiError(404, "not_found", "TELEGRAM_WEBHOOK_SECRET is not configured")
    given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
    if not hmac.compare_digest(given.encode(), secret.encode()):
        raise ApiError(401, "unauthorized", "missing or wrong X-Telegram-Bot-Api-Secret-Token")
    press = buttons.parse_update(json_object(rt.settings.max_body_bytes))
    if press is None:
        return jsonify({}), 200  # not a button press: nothing to do
    outcome = buttons.decide(rt, press)
    answer = outcome.answer
    if outcome.new_job is not None:
        stored, created = _create(rt, outcome.new_job)
        metrics.job_submitted(stored, created)
        if not created:
            answer = "Already on it."
    if outcome.forward:
        from videopoll.tasks.deliver import forward_press

        forward_press.delay(press.job_id, press.action, str(press.chat_id))
    return jsonify({"method": "answerCallbackQuery", "callback_query_id": press.query_id,
                    "text": answer}), 200


@bp.get("/videos/<path:key>")
def video_file(key: str) -> ResponseReturnValue:
    """Serve a stored video when storage is a local folder (the offline stack)."""
    storage = runtime().storage
    if not isinstance(storage, FileStorage):
        raise ApiError(404, "not_found", "videos are served by the storage service")
    try:
        path = storage.path(key)
    except ValueError:
        raise ApiError(404, "not_found", "no such video") from None
    if not path.is_file():
        raise ApiError(404, "not_found", "no such video")
    return send_file(path, mimetype="video/mp4", conditional=True)


@bp.get("/metrics")
def metrics_scrape() -> ResponseReturnValue:
    """Prometheus' scrape: every API worker's counters, and the jobs in flight counted now."""
    rt = runtime()
    body, content_type = metrics.exposition(request.headers.get("Accept"),
                                            rt.settings.prometheus_multiproc_dir, rt.store)
    return body, 200, {"Content-Type": content_type}


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
    body: dict[str, Any] = {"checks": checks}
    if checks["redis"] == "ok":
        checks["beat"], body["lastSweepAgeSeconds"] = _sweep_health(rt)
    healthy = all(v == "ok" for v in checks.values())
    body["status"] = "ok" if healthy else "unhealthy"
    return jsonify(body), 200 if healthy else 503


def _sweep_health(rt: Runtime) -> tuple[str, float | None]:
    """Is the safety net running? Beat's sweep recovers every lost message (invariant 1).

    A few missed intervals are normal under load; no sweep for several intervals means no
    beat (or no worker on the sweep queue), and nothing lost will ever be recovered.
    """
    limit = max(SWEEP_STALE_INTERVALS * rt.settings.sweep_interval_seconds,
                SWEEP_STALE_MIN_SECONDS)
    now = time.time()
    last = rt.store.last_sweep()
    if last is None:
        started: float = current_app.extensions.get("videopoll_started_at", now)
        return ("ok" if now - started < limit else "error: no sweep has run"), None
    age = round(now - last, 3)
    return ("ok" if age < limit else f"error: last sweep {age:.0f}s ago"), age


def job_view(job: JobRecord) -> dict[str, Any]:
    """The public view, with a link to the video made for this caller now."""
    rt = runtime()
    key = job.delivery.storage_key
    link = rt.storage.link_for(key, request.host_url) if key else None
    view = public_view(job, link, view_url=view_url(rt.settings, job.job_id, request.host_url))
    if job.status.terminal or job.status is JobStatus.DELIVERING:
        view["notifications"] = rt.store.channel_results(job.job_id)
    return view
