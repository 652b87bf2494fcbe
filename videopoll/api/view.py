"""``GET /jobs/<id>/view``: a status page a person can open, and the JSON it refreshes from.

A browser cannot send the API's bearer header, so ``GET /jobs/<id>`` mints a ``viewUrl``
whose query carries a signed, expiring token: ``token=<expires>.<HMAC-SHA256 of the job id
and expiry>``, keyed by ``VIEW_SECRET`` (or, without it, ``API_TOKEN``) and good for
``VIEW_LINK_SECONDS``. The token opens this one job's page and nothing else: not the API,
not another job. A request without a token is judged as ``GET /jobs/<id>`` is (the bearer
token, or a direct loopback caller when ``API_TOKEN`` is unset); with neither secret set no
token can be minted, and pages open on loopback only.

The page shows a subset of ``GET /jobs/<id>`` (``PAGE_FIELDS``: no metadata, no
notifications, no provider task id) and polls ``/jobs/<id>/view.json`` with the same token
until the job ends; with scripts off, a meta refresh reloads it instead.
"""

from __future__ import annotations

import secrets
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template, request
from flask.typing import ResponseReturnValue

from videopoll.api.caller import check_caller
from videopoll.api.errors import ApiError
from videopoll.job_view import job_view as public_view
from videopoll.models import JobRecord
from videopoll.runtime import Runtime
from videopoll.view_links import token_valid

bp = Blueprint("view", __name__, template_folder="templates")
PAGE_FIELDS = ("jobId", "status", "message", "model", "attempts", "maxAttempts", "progress",
               "outputUrl", "errorCode", "updatedAt")
REFRESH_SECONDS = 2
PAGE_PROBLEMS = {404: "This job is no longer available: finished jobs are kept for a limited "
                        "time, and the link may be mistyped."}
def _runtime() -> Runtime:
    rt: Runtime = current_app.extensions["videopoll"]
    return rt


def _authorize(rt: Runtime, job_id: str) -> None:
    """A token for this job, else the API's own rule; the job is looked up only after."""
    token = request.args.get("token")
    if token is None:
        check_caller(rt.settings.secret("api_token"))
    elif not token_valid(rt.settings, job_id, token):
        raise ApiError(401, "unauthorized", "this view link is invalid or has expired; "
                       "GET /jobs/<id> gives a fresh viewUrl")


def _page_view(rt: Runtime, job_id: str) -> dict[str, Any]:
    job: JobRecord | None = rt.store.get(job_id)
    if job is None:
        raise ApiError(404, "not_found", f"no job {job_id!r}")
    key = job.delivery.storage_key
    link = rt.storage.link_for(key, request.host_url) if key else None
    full = public_view(job, link)
    return {name: full[name] for name in PAGE_FIELDS}


def _guarded(response: Response, nonce: str | None = None) -> Response:
    """No caching (the page is live), no referrer (the URL holds the token), no framing."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    if nonce is not None:
        response.headers["Content-Security-Policy"] = (
            f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
            "connect-src 'self'; media-src * data: blob:; img-src 'self' data:; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    return response


@bp.get("/jobs/<job_id>/view")
def job_page(job_id: str) -> ResponseReturnValue:
    rt = _runtime()
    nonce = secrets.token_urlsafe(16)
    try:
        _authorize(rt, job_id)
        job: dict[str, Any] | None = _page_view(rt, job_id)
        problem, status = None, 200
    except ApiError as exc:
        job, problem, status = None, PAGE_PROBLEMS.get(exc.status, exc.message), exc.status
    html = render_template("job_view.html", job=job, problem=problem, nonce=nonce,
                           refresh=REFRESH_SECONDS, terminal=("succeeded", "failed", "canceled"))
    return _guarded(Response(html, status, mimetype="text/html"), nonce)


@bp.get("/jobs/<job_id>/view.json")
def job_page_data(job_id: str) -> ResponseReturnValue:
    rt = _runtime()
    _authorize(rt, job_id)
    return _guarded(jsonify(_page_view(rt, job_id)))
