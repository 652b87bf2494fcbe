"""Scrub secrets from text before it reaches a log line or a job record (invariant 7)."""

from __future__ import annotations

import re

_PATTERNS = [
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1[redacted]"),
    (re.compile(r"(?i)\b(bot)\d+:[A-Za-z0-9_-]+"), r"\1[redacted]"),
    (re.compile(r"(https?://[^\s?#\"']+)\?[^\s#\"']*"), r"\1?[redacted]"),
    (
        re.compile(r"(?i)((?:api[_-]?key|token|secret|signature|password)[\"']?\s*[:=]\s*[\"']?)"
                   r"[^\s\"'&,}]+"),
        r"\1[redacted]",
    ),
]
MAX_CHARS = 500


def redact(text: str, limit: int = MAX_CHARS) -> str:
    """Remove tokens, keys and signed-URL query strings; cap the length."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text[:limit]
