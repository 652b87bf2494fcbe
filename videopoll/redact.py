"""Scrub secrets from text before it reaches a log line or a job record (invariant 7).

Each pattern names one kind of secret we handle or that providers and clouds hand out. A
pattern keeps what tells a reader where the secret was (the header name, the URL host) and
replaces only the secret itself.
"""

from __future__ import annotations

import re

R = "[redacted]"
_PATTERNS = [
    # Authorization headers of any scheme (Bearer, Basic, Key, Token …)
    (re.compile(r"(?i)\b(authorization[\"']?\s*[:=]\s*[\"']?(?:bearer|basic|key|token)?\s*)"
                r"[A-Za-z0-9._~+/=:-]+"), rf"\1{R}"),
    (re.compile(r"(?i)\b((?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]{6,}"), rf"\1{R}"),
    # user-info in URLs: redis://:pw@host, https://user:pass@host, https://token@host; up to
    # the authority's last @, since a password may hold one
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s/?#\"'<>]*@"), rf"\1{R}@"),
    (re.compile(r"(?i)\b(bot)\d+:[A-Za-z0-9_-]+"), rf"\1{R}"),
    (re.compile(r"\b\d{6,12}:[A-Za-z0-9_-]{30,}"), R),  # a bare Telegram bot token
    # signed URLs: the query string carries the signature
    (re.compile(r"(https?://[^\s?#\"']+)\?[^\s#\"']*"), rf"\1?{R}"),
    # key shapes that identify themselves wherever they appear
    (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), R),
    (re.compile(r"\bsk-(?:proj-|live-|test-)?[A-Za-z0-9_-]{8,}"), R),
    (re.compile(r"\bwhsec_[A-Za-z0-9+/=]{8,}"), R),
    (re.compile(r"\bAIza[0-9A-Za-z_-]{35}"), R),  # Google API keys (Gemini / Veo)
    (re.compile(r"(?i)\b(aws_secret_access_key|aws_session_token)([\"']?\s*[:=]\s*[\"']?)"
                r"[A-Za-z0-9/+=]+"), rf"\1\2{R}"),
    (
        re.compile(r"(?i)((?:api[_-]?key|token|secret|signature|password|passwd|pwd)[\"']?"
                   r"\s*[:=]\s*[\"']?)[^\s\"'&,}]+"),
        rf"\1{R}",
    ),
]
MAX_CHARS = 500


def redact(text: str, limit: int = MAX_CHARS) -> str:
    """Remove tokens, keys, URL credentials and signed-URL query strings; cap the length."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text[:limit]
