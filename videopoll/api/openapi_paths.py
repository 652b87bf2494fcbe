"""Every route of the API as an OpenAPI operation: what it takes and each answer it gives.

The schemas named here (``ErrorBody``, ``JobView``…) are the pydantic models in
``api.openapi``; the error answers are shared components, one per status, so every operation
that can answer 422 points at the same ``{error: "validation_failed", details: [{field,
reason}]}``.
"""

from __future__ import annotations

from typing import Any

from videopoll.providers import PROVIDERS

Json = dict[str, Any]


def ref(name: str) -> Json:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(name: str) -> Json:
    return {"application/json": {"schema": ref(name)}}


def _error(description: str, name: str = "ErrorBody", **extra: Any) -> Json:
    return {"description": description, "content": _json(name), **extra}


RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before retrying",
                               "schema": {"type": "integer"}}}
# status → (component name, response); every error body is api.errors' one JSON shape
ERRORS: dict[int | str, tuple[str, Json]] = {
    400: ("BadRequest", _error("`malformed_json`: not valid JSON or not UTF-8; on a callback, "
                               "`callback_rejected`: it names no task")),
    401: ("Unauthorized", _error("`unauthorized`: missing or wrong bearer token (or, without "
                                 "`API_TOKEN`, a caller that is not direct loopback); on a "
                                 "callback, `callback_rejected`: bad signature or URL token")),
    404: ("NotFound", _error("`not_found`")),
    408: ("RequestTimeout", _error("`request_timeout`: the body arrived too slowly")),
    409: ("Conflict", _error("`conflict`: the job already finished")),
    413: ("PayloadTooLarge", _error("`payload_too_large`: the body is over `MAX_BODY_BYTES`")),
    415: ("UnsupportedMediaType", _error("`unsupported_media_type`: send "
                                         "`Content-Type: application/json`")),
    422: ("ValidationFailed", _error("`validation_failed`: one `{field, reason}` per problem",
                                     "ValidationErrorBody")),
    503: ("StoreUnavailable", _error("`store_unavailable`: Redis did not answer. On a submit the "
                                     "job may or may not be stored: retry with the same "
                                     "`Idempotency-Key` or `taskId`", headers=RETRY_AFTER)),
    "default": ("UnexpectedError", _error("any other failure, same JSON shape: 405 "
                                          "`method_not_allowed`, 500 `internal_error` or "
                                          "`job_unreadable`")),
}
BODY_ERRORS = (400, 408, 413, 415, 422)


def _responses(answers: dict[int, Json], *errors: int) -> Json:
    out: Json = {str(status): answer for status, answer in answers.items()}
    shared: tuple[int | str, ...] = (*errors, "default")
    for status in shared:
        out[str(status)] = {"$ref": f"#/components/responses/{ERRORS[status][0]}"}
    return out


def _op(summary: str, answers: dict[int, Json], errors: tuple[int, ...], *,
        description: str = "", body: Json | None = None, params: tuple[Json, ...] = (),
        public: bool = False) -> Json:
    """One operation; ``public`` ones authenticate themselves (or need not), no bearer."""
    op: Json = {"summary": summary, "responses": _responses(answers, *errors)}
    if description:
        op["description"] = description
    if params:
        op["parameters"] = list(params)
    if body is not None:
        op["requestBody"] = {"required": True, "content": body}
    if public:
        op["security"] = []
    return op


def _path(name: str, description: str, schema: Json | None = None) -> Json:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": schema or {"type": "string"}}


JOB_ID = _path("job_id", "the `jobId` a submission answered")
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 200},
    "description": "the same key (same caller, same endpoint) returns the same job; reused with "
                   "another body it is a 422"}
SUBMITTED = {202: {"description": "a new job", "content": _json("Accepted")},
             200: {"description": "already tracking this job (same `taskId` or "
                                  "`Idempotency-Key`): the job as it is now",
                   "content": _json("JobView")}}
VIEW_TOKEN = {"name": "token", "in": "query", "required": False, "schema": {"type": "string"},
               "description": "the signed token of a `viewUrl` (instead of the bearer token)"}
TEXT: Json = {"text/plain": {"schema": {"type": "string"}}}
HTML: Json = {"text/html": {"schema": {"type": "string"}}}
ANY_JSON: Json = {"application/json": {"schema": {}}}


def paths() -> Json:
    families = {"type": "string", "enum": sorted(PROVIDERS)}
    job = {200: {"description": "the job", "content": _json("JobView")}}
    return {
        "/webhook/poll-video": {"post": _op(
            "Poll a provider task someone else submitted (the n8n contract)", SUBMITTED,
            (*BODY_ERRORS, 401, 503), body=_json("PollVideoRequest"),
            params=(IDEMPOTENCY_KEY,))},
        "/jobs": {"post": _op(
            "Submit a generation to the provider, then poll it", SUBMITTED,
            (*BODY_ERRORS, 401, 503), body=_json("GenerateRequest"), params=(IDEMPOTENCY_KEY,),
            description="A submit whose answer is lost is never resent: the job ends "
                        "`submit_unconfirmed` rather than pay twice.")},
        "/jobs/{job_id}": {"get": _op("A job's status, message and video link", job,
                                      (401, 404, 503), params=(JOB_ID,))},
        "/jobs/{job_id}/cancel": {"post": _op(
            "Cancel a job that has not finished", job, (401, 404, 409, 503), params=(JOB_ID,))},
        "/jobs/{job_id}/view": {"get": _op(
            "A status page for people (opened from `viewUrl`)",
            {200: {"description": "the page", "content": HTML},
             401: {"description": "the link is invalid or expired (a page)", "content": HTML},
             404: {"description": "no such job (a page)", "content": HTML}}, (),
            params=(JOB_ID, VIEW_TOKEN), public=True)},
        "/jobs/{job_id}/view.json": {"get": _op(
            "What the status page refreshes from: a subset of the job view",
            {200: {"description": "the job's page fields", "content": ANY_JSON}},
            (401, 404, 503), params=(JOB_ID, VIEW_TOKEN), public=True)},
        "/models": {"get": _op("Every model name and the options it accepts",
                               {200: {"description": "models", "content": _json("ModelList")}},
                               (401,))},
        "/callbacks/{family}": {"post": _op(
            "A provider's push callback: verified, then wakes that job's poll", {200: {
                "description": "`accepted` (the poll runs now) or `ignored`",
                "content": _json("CallbackReply")}}, (400, 401, 404, 408, 413, 503),
            description="Verified by the provider's own signature, or for families that do "
                        "not sign, by the `token` in the URL we gave them. It can only wake a "
                        "poll: the status API decides the job.",
            body=ANY_JSON, params=(_path("family", "the provider family", families), {
                "name": "token", "in": "query", "required": False, "schema": {"type": "string"},
                "description": "the callback URL token (families that do not sign)"}),
            public=True)},
        "/telegram/webhook": {"post": _op(
            "Button presses on delivered videos (Telegram's webhook)", {200: {
                "description": "the press's answer, as a Bot API method call",
                "content": _json("TelegramAnswer")}}, (*BODY_ERRORS, 401, 404, 503),
            description="404 until `TELEGRAM_WEBHOOK_SECRET` is set; 401 without that secret "
                        "in `X-Telegram-Bot-Api-Secret-Token`.",
            body=ANY_JSON, params=({"name": "X-Telegram-Bot-Api-Secret-Token", "in": "header",
                                    "required": True, "schema": {"type": "string"}},),
            public=True)},
        "/videos/{key}": {"get": _op(
            "A stored video, when storage is a local folder (links in messages)", {
                200: {"description": "the video",
                      "content": {"video/mp4": {"schema": {"type": "string",
                                                           "format": "binary"}}}},
                206: {"description": "the requested byte range"},
                304: {"description": "not modified since the caller's copy"}}, (404,),
            description="The random job id in the key is the capability, as with a "
                        "presigned S3 link: no bearer token.",
            params=(_path("key", "the storage key (may contain `/`)"),), public=True)},
        "/healthz": {"get": _op("Redis, the broker and beat's sweep", {
            200: {"description": "healthy", "content": _json("Health")},
            503: {"description": "the check that failed is named", "content": _json("Health")}},
            (), public=True)},
        "/metrics": {"get": _op(
            "Prometheus metrics (text exposition format; OpenMetrics when asked for)",
            {200: {"description": "the scrape", "content": TEXT}}, (401,))},
        "/openapi.json": {"get": _op("This document", {200: {
            "description": "OpenAPI 3.1", "content": ANY_JSON}}, (401,))},
        "/docs": {"get": _op("This document as a page (self-contained, works offline)",
                             {200: {"description": "the page", "content": HTML}}, (401,))},
    }
