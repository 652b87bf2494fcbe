"""Every error leaves the API as JSON: ``{"error", "message", "details"?}``, never a traceback."""

from __future__ import annotations

import logging
from typing import Any

import redis
from flask import Flask, jsonify
from flask.typing import ResponseReturnValue
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from videopoll.store import UnreadableJobError

log = logging.getLogger(__name__)


RETRY_AFTER_SECONDS = 5
# The words for each status Werkzeug or gunicorn may answer without our views.
ERROR_NAMES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed",
               408: "request_timeout", 413: "payload_too_large", 414: "uri_too_long",
               415: "unsupported_media_type", 417: "expectation_failed",
               431: "request_header_fields_too_large", 501: "not_implemented",
               503: "service_unavailable"}


class ApiError(Exception):
    """An answer to the caller; ``retry_after`` adds a ``Retry-After`` header (503s)."""

    def __init__(
        self, status: int, error: str, message: str, details: list[dict[str, str]] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(status, error, message, details, retry_after)
        self.status = status
        self.error = error
        self.message = message
        self.details = details
        self.retry_after = retry_after


def store_unavailable(message: str) -> ApiError:
    return ApiError(503, "store_unavailable", message, retry_after=RETRY_AFTER_SECONDS)


def validation_details(exc: ValidationError) -> list[dict[str, str]]:
    """One ``{"field", "reason"}`` per problem, fields named as the caller spelled them."""
    details = []
    for err in exc.errors():
        field = ".".join(str(part) for part in err["loc"]) or "body"
        reason = err["msg"]
        if err["type"] == "missing":
            reason = "is required"
        elif err["type"] == "extra_forbidden":
            reason = "is not a known field"
        details.append({"field": field, "reason": reason})
    return details


def register(app: Flask) -> None:
    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> ResponseReturnValue:
        log.exception("unhandled error")
        return jsonify({"error": "internal_error", "message": "unexpected server error"}), 500

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> ResponseReturnValue:
        body: dict[str, Any] = {"error": exc.error, "message": exc.message}
        if exc.details is not None:
            body["details"] = exc.details
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else {}
        return jsonify(body), exc.status, headers

    @app.errorhandler(redis.RedisError)
    def _store_error(exc: redis.RedisError) -> ResponseReturnValue:
        # Only connection-level faults are an outage; anything else is our bug (500 above).
        if not isinstance(exc, (redis.ConnectionError, redis.TimeoutError)):
            return _unexpected(exc)
        log.warning("job store unavailable: %s", type(exc).__name__)
        return _api_error(store_unavailable("the job store is unavailable; retry later"))

    @app.errorhandler(UnreadableJobError)
    def _unreadable(exc: UnreadableJobError) -> ResponseReturnValue:
        # A record written before today's limits (or damaged): say which, not "unexpected".
        log.error("unreadable job record", extra={"job_id": exc.job_id, "reason": exc.reason})
        return jsonify({"error": "job_unreadable",
                        "message": f"job {exc.job_id!r} is stored but cannot be read"}), 500

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> ResponseReturnValue:
        code = exc.code or 500
        return jsonify({"error": ERROR_NAMES.get(code, "http_error"),
                        "message": exc.description}), code
