"""Structured logs: one JSON object per line, with secrets scrubbed (invariant 7)."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from videopoll.redact import redact

_STD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
EXTRA_CHARS = 2000
TRACE_HEAD = 1000
TRACE_TAIL = 3000


def _trim_trace(text: str) -> str:
    """Keep the start (where it began) and the end (the frames that failed and the error)."""
    if len(text) <= TRACE_HEAD + TRACE_TAIL:
        return text
    cut = len(text) - TRACE_HEAD - TRACE_TAIL
    return f"{text[:TRACE_HEAD]}\n… {cut} chars …\n{text[-TRACE_TAIL:]}"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage(), 2000),
        }
        for key, value in record.__dict__.items():
            if key not in _STD and not key.startswith("_"):
                out[key] = _scrub(value)
        if record.exc_info:
            trace = self.formatException(record.exc_info)
            out["exc"] = _trim_trace(redact(trace, len(trace)))
        return json.dumps(out, default=str)


def _scrub(value: Any) -> Any:
    """Redact any value a log call passes as ``extra``: strings, and containers as JSON."""
    if isinstance(value, str):
        return redact(value, EXTRA_CHARS)
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    try:
        text = json.dumps(value, default=str)
    except (TypeError, ValueError):  # non-str keys, a cycle: a log line must still go out
        text = repr(value)
    scrubbed = redact(text, len(text))
    if len(scrubbed) > EXTRA_CHARS:
        return scrubbed[:EXTRA_CHARS]
    try:
        return json.loads(scrubbed)
    except ValueError:
        return scrubbed


def configure_logging(level: int | str = logging.INFO) -> None:
    """Install the JSON handler on the root logger once; later calls only change the level."""
    root = logging.getLogger()
    root.setLevel(level)
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
