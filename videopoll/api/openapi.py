"""``GET /openapi.json`` and ``GET /docs``: the HTTP API described from its own pydantic models.

Built here rather than with spectree (or flask-pydantic-spec): those validate the body
themselves and answer their own 422, while our views read bodies with ``api.body`` (which turns
deep nesting, 5,000-digit numbers and lone surrogates into 4xx naming the field) and answer
``api.errors``' one JSON shape. So the request schemas are the very models the views validate
with (``models_json_schema``), the answers are the small models below, and
``tests/test_openapi.py`` checks the app's real answers against them: a field added to a view
but not here fails that test.

Both routes follow the API's own rule (``views.authenticate``): the spec is no secret, but the
API grows no unauthenticated surface. ``/docs`` is the spec rendered on the server into one
self-contained page (no script, no CDN), so a page fetched with the bearer header and saved
opens anywhere, offline.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any, Literal

from flask import Blueprint, jsonify, render_template
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from videopoll import __version__
from videopoll.api.openapi_paths import ERRORS, paths
from videopoll.api.views import authenticate
from videopoll.models import ErrorCode, GenerateRequest, JobStatus, PollVideoRequest

bp = Blueprint("docs", __name__, template_folder="templates")
bp.before_request(authenticate)
REF = "#/components/schemas/{model}"


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FieldProblem(_Answer):
    field: str  # as the caller spelled it: ``taskId``, ``metadata.a.0``, ``Idempotency-Key``
    reason: str


class ErrorBody(_Answer):
    """Every error: a stable ``error`` word, a sentence for people, and fields when known."""

    error: str
    message: str
    details: list[FieldProblem] | None = None


class ValidationErrorBody(_Answer):
    """422: each problem as ``{field, reason}``."""

    error: Literal["validation_failed"]
    message: str
    details: list[FieldProblem]


class Accepted(_Answer):
    jobId: str
    status: JobStatus
    message: str


class JobView(_Answer):
    """A job as ``GET /jobs/<id>`` shows it: user-facing words, never raw provider errors."""

    jobId: str
    status: JobStatus
    message: str
    model: str
    attempts: int
    maxAttempts: int
    nextPollAt: str | None
    providerTaskId: str | None
    outputUrl: str | None  # a link made for this request: public, presigned or /videos/
    errorCode: ErrorCode | None
    progress: int | None
    createdAt: str
    updatedAt: str
    metadata: dict[str, Any]
    parentJobId: str | None
    viewUrl: str | None = None  # the job's status page (a signed link)
    notifications: dict[str, dict[str, Any]] | None = None  # per channel, once delivering


class ModelEntry(_Answer):
    model: str
    id: str
    family: str
    providerModel: str
    durations: list[int]
    aspectRatios: list[str]
    maxImages: int
    defaultDuration: int
    pushCallbacks: bool
    cancel: bool


class ModelList(_Answer):
    models: list[ModelEntry]
    families: list[str]


class Checks(_Answer):
    redis: str  # "ok" or "error: <ExceptionName>"
    broker: str
    beat: str | None = None  # present when Redis answered


class Health(_Answer):
    status: Literal["ok", "unhealthy"]
    checks: Checks
    lastSweepAgeSeconds: float | None = None


class CallbackReply(BaseModel):
    """``accepted`` woke the job's poll; ``ignored``: nothing to do. A provider's own reply
    fields may ride along."""

    model_config = ConfigDict(extra="allow")
    status: Literal["accepted", "ignored"]


class TelegramAnswer(_Answer):
    """A Bot API method call answered on the webhook's own response; ``{}`` for no press."""

    method: Literal["answerCallbackQuery"] | None = None
    callback_query_id: str | None = None
    text: str | None = None


MODELS: list[tuple[type[BaseModel], JsonSchemaMode]] = [
    (PollVideoRequest, "validation"), (GenerateRequest, "validation"),
    *((m, "serialization") for m in (Accepted, JobView, ErrorBody, ValidationErrorBody,
                                     ModelList, Health, CallbackReply, TelegramAnswer)),
]


@lru_cache(maxsize=1)
def spec() -> dict[str, Any]:
    """The OpenAPI 3.1 document (built once per process)."""
    _, schemas = models_json_schema(MODELS, ref_template=REF)
    return {
        "openapi": "3.1.0",
        "info": {"title": "videopoll", "version": __version__,
                 "description": "Accepts AI video jobs, polls the provider, delivers the video "
                                "once. Every error is JSON: `{error, message, details?}`."},
        "security": [{"bearer": []}],
        "paths": paths(),
        "components": {
            "schemas": schemas["$defs"],
            "responses": {name: response for name, response in ERRORS.values()},
            "securitySchemes": {"bearer": {
                "type": "http", "scheme": "bearer",
                "description": "`API_TOKEN`. Without one set, only direct (unproxied) loopback "
                               "callers are served, and they send no token."}},
        },
    }


@bp.get("/openapi.json")
def openapi_json() -> ResponseReturnValue:
    return jsonify(spec())


@bp.get("/docs")
def docs() -> ResponseReturnValue:
    document = spec()
    schemas = {name: json.dumps(schema, indent=2, ensure_ascii=False)
               for name, schema in document["components"]["schemas"].items()}
    html = render_template("openapi_docs.html", info=document["info"],
                           operations=operations(document), schemas=schemas)
    return html, 200, {"Content-Type": "text/html; charset=utf-8"}


def operations(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The spec's operations flattened for the page: shared answers resolved, schemas named."""
    shared = document["components"]["responses"]
    out = []
    for path, methods in document["paths"].items():
        for method, op in methods.items():
            answers = []
            for status, answer in op["responses"].items():
                if "$ref" in answer:
                    answer = shared[answer["$ref"].rsplit("/", 1)[1]]
                content = answer.get("content", {})
                answers.append({"status": status, "description": answer["description"],
                                "types": [(kind, _schema_name(c.get("schema", {})))
                                          for kind, c in content.items()]})
            body = op.get("requestBody", {}).get("content", {})
            out.append({"method": method.upper(), "path": path, "summary": op["summary"],
                        "description": op.get("description", ""),
                        "public": op.get("security") == [],
                        "params": op.get("parameters", []),
                        "body": [(kind, _schema_name(c["schema"])) for kind, c in body.items()],
                        "answers": answers})
    return out


def _schema_name(schema: dict[str, Any]) -> str:
    return str(schema.get("$ref", "")).rsplit("/", 1)[-1] or schema.get("format", "")
