"""Every error leaves the API as JSON: ``{"error", "message", "details"?}``, never a traceback."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify
from flask.typing import ResponseReturnValue
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(
        self, status: int, error: str, message: str, details: list[dict[str, str]] | None = None
    ) -> None:
        super().__init__(status, error, message, details)
        self.status = status
        self.error = error
        self.message = message
        self.details = details


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
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> ResponseReturnValue:
        body: dict[str, Any] = {"error": exc.error, "message": exc.message}
        if exc.details is not None:
            body["details"] = exc.details
        return jsonify(body), exc.status

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> ResponseReturnValue:
        names = {413: "payload_too_large", 404: "not_found", 405: "method_not_allowed",
                 400: "bad_request", 415: "unsupported_media_type"}
        code = exc.code or 500
        return jsonify({"error": names.get(code, "http_error"), "message": exc.description}), code

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> ResponseReturnValue:
        log.exception("unhandled error")
        return jsonify({"error": "internal_error", "message": "unexpected server error"}), 500
