"""Read a request body into plain JSON values the job record can store and read back.

Flask's ``get_json`` calls every failure "not valid JSON" and lets some through as 500s: a
body nested past the parser's recursion limit (``RecursionError``), a 5,000-digit number
(``ValueError`` from ``int``), a lone surrogate (``UnicodeEncodeError`` when written), a
chunked body over the cap. Here each one is a 4xx naming the field:

- nesting is counted before parsing, so the parser never recurses deeper than ``MAX_DEPTH``;
- numbers, ``NaN``/``Infinity`` and strings are checked as they are parsed, and the path of the
  first bad value is reported in the caller's own field names (``metadata.a.0``).
"""

from __future__ import annotations

import json
import math
import threading
import time
from typing import Any

from flask import request
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge
from werkzeug.wsgi import get_content_length

from videopoll.api.errors import ApiError

MAX_DEPTH = 32  # well past any valid body (metadata may nest 10), far below the parser's limit
MAX_NUMBER_DIGITS = 30
READ_CHUNK = 16 * 1024
BODY_DEADLINE_SECONDS = 30.0


class _Unfit:
    """Stands in for a parsed value the record must not hold, until its path is known."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


class _Noted(threading.local):
    """Whether this thread's last parse met an unfit number: a body with none (and no
    ``\\u`` escape) needs no walk over its values. The parse never yields, so a greenlet's
    flag is its own too."""

    unfit = False


_noted = _Noted()


def _int(text: str) -> int | _Unfit:
    if len(text.lstrip("-")) > MAX_NUMBER_DIGITS:
        _noted.unfit = True
        return _Unfit(f"number has more than {MAX_NUMBER_DIGITS} digits")
    return int(text)


def _float(text: str) -> float | _Unfit:
    value = float(text)
    if not math.isfinite(value) or len(text) > 2 * MAX_NUMBER_DIGITS:
        _noted.unfit = True
        return _Unfit("number is out of range")
    return value


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# one decoder for every body: ``json.loads`` with hooks builds a new one per call
_DECODER = json.JSONDecoder(parse_int=_int, parse_float=_float, parse_constant=_constant)


def _too_deep(raw: str) -> bool:
    # a body cannot nest deeper than it has brackets: most bodies skip the character walk
    return raw.count("[") + raw.count("{") > MAX_DEPTH and _depth(raw) > MAX_DEPTH


def _depth(raw: str) -> int:
    """How deep ``[``/``{`` nest outside strings; cheap, and never recursive."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in raw:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _field(path: list[str]) -> str:
    return ".".join(path) or "body"


def _printable(key: str) -> str:
    return key.encode("utf-8", "backslashreplace").decode("utf-8")


def _problem(value: Any, path: list[str]) -> tuple[str, str] | None:
    """The first value the store could not write or read back, as (field, reason)."""
    if isinstance(value, _Unfit):
        return _field(path), value.reason
    if isinstance(value, str):
        return (_field(path), "contains a lone surrogate (invalid Unicode)") \
            if _has_surrogate(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            where = [*path, _printable(key)]
            if _has_surrogate(key):
                return _field(where), "key contains a lone surrogate (invalid Unicode)"
            found = _problem(item, where)
            if found:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _problem(item, [*path, str(index)])
            if found:
                return found
    return None


def _read(max_bytes: int) -> bytes:
    """The raw body; 413 past the cap whether or not the caller sent a Content-Length.

    A chunked body has no length to refuse up front, so the cap is counted as it arrives; a
    caller that trickles it gets ``BODY_DEADLINE_SECONDS`` in all (each read is bounded by
    the server's socket timeout), then 408. A body with a Content-Length is read from the
    server's input directly, never past that length (werkzeug's wrapper around it was a
    twentieth of a submission's CPU); one without goes through werkzeug's stream, which
    knows whether the server ended it.
    """
    deadline = time.monotonic() + BODY_DEADLINE_SECONDS
    environ = request.environ
    expected = get_content_length(environ)  # None when chunked
    if expected is not None and expected > max_bytes:
        raise RequestEntityTooLarge()
    stream = environ["wsgi.input"] if expected is not None else request.stream
    parts: list[bytes] = []
    size = 0
    try:
        while size <= max_bytes and (expected is None or size < expected):
            if time.monotonic() > deadline:
                raise TimeoutError("body deadline")
            want = READ_CHUNK if expected is None else min(READ_CHUNK, expected - size)
            part = stream.read(min(want, max_bytes + 1 - size))
            if not part:
                break
            parts.append(part)
            size += len(part)
    except (OSError, ClientDisconnected) as exc:
        # Werkzeug reports the socket's read timeout as a disconnect; tell the two apart
        cause = exc.__context__ if isinstance(exc, ClientDisconnected) else exc
        if not isinstance(cause, TimeoutError):
            raise ApiError(400, "bad_request", "the request body ended early") from exc
        raise ApiError(408, "request_timeout", "the request body arrived too slowly") from exc
    if size > max_bytes:
        raise RequestEntityTooLarge()
    return parts[0] if len(parts) == 1 else b"".join(parts)


def raw_json(max_bytes: int) -> tuple[bytes, Any]:
    """The raw body (a provider's signature covers its bytes) and its JSON, ``None`` if it is
    not JSON: the provider's adapter decides what an unreadable callback means."""
    raw = _read(max_bytes)
    try:
        text = raw.decode("utf-8")
        if _too_deep(text):
            return raw, None
        return raw, json.loads(text, parse_constant=_constant)
    except (ValueError, RecursionError):
        return raw, None


def json_object(max_bytes: int) -> dict[str, Any]:
    """The body as a JSON object, or an ``ApiError`` that says what is wrong with it."""
    # the common header compared as it came, before werkzeug parses its options
    if request.environ.get("CONTENT_TYPE") != "application/json" and not request.is_json:
        raise ApiError(415, "unsupported_media_type", "send Content-Type: application/json")
    raw = _read(max_bytes)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, "malformed_json", "the body is not UTF-8") from exc
    if _too_deep(text):
        raise ApiError(422, "validation_failed", "the body nests too deeply", [
            {"field": "body", "reason": f"must not nest deeper than {MAX_DEPTH} levels"}])
    _noted.unfit = False
    try:
        data = _DECODER.decode(text)
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, "malformed_json", "the body is not valid JSON") from exc
    # strict UTF-8 decoding refuses an encoded surrogate, so only an escape can make one
    problem = _problem(data, []) if _noted.unfit or "\\u" in text else None
    if problem:
        field, reason = problem
        raise ApiError(422, "validation_failed", "invalid request",
                       [{"field": field, "reason": reason}])
    if not isinstance(data, dict):
        raise ApiError(422, "validation_failed", "the body must be a JSON object",
                       [{"field": "body", "reason": "must be a JSON object"}])
    return data
