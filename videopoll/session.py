"""Restore the caller's session (chat id, language, preferences) from Redis.

The n8n main workflow keeps each user's session under ``session:{sessionId}``
(``SESSION_KEY_TEMPLATE``), as a JSON string or as a hash; ``TYPE`` says which, so a key of
another type is a reason, not a WRONGTYPE error. A request that names its ``chatId`` needs
none of it; otherwise the session supplies it. Bad, missing or oversized data is a reason,
never an exception: the video is delivered either way, and the job records why the chat could
not be told. Reads are bounded: a string is measured before it is fetched, and a hash is read
only for the fields a session supplies, however much else the workflow keeps there.
"""

from __future__ import annotations

import json
from typing import Any

import redis
from pydantic import BaseModel, Field

MAX_SESSION_BYTES = 1024 * 1024
MAX_LANGUAGE_CHARS = 35  # the longest BCP 47 tags in use are well under this
FIELDS = ("chatId", "chat_id", "language", "lang", "preferences")


class SessionInfo(BaseModel):
    chat_id: str | int | None = None
    language: str | None = None
    preferences: dict[str, Any] = Field(default_factory=dict)


def session_key(template: str, session_id: str) -> str:
    # replace, not format: a session id with braces must not be read as a placeholder
    return template.replace("{sessionId}", session_id)


def restore(client: redis.Redis, template: str, session_id: str) -> tuple[SessionInfo | None, str]:
    """The session, or ``None`` and the reason it could not be used."""
    key = session_key(template, session_id)
    try:
        kind = _text(client.type(key))
        if kind == "none":
            return None, f"no session at {key}"
        if kind == "string":
            if int(client.strlen(key)) > MAX_SESSION_BYTES:
                return None, f"session at {key} is larger than {MAX_SESSION_BYTES} bytes"
            raw = client.get(key)
            data: Any = json.loads(raw) if raw else None
        elif kind == "hash":
            values = client.hmget(key, list(FIELDS))
            data = {f: _text(v) for f, v in zip(FIELDS, values, strict=True) if v is not None}
        else:
            return None, f"session at {key} is a Redis {kind}"
    except (redis.RedisError, ValueError) as exc:
        return None, f"session at {key} unreadable: {type(exc).__name__}"
    if not isinstance(data, dict):
        return None, f"session at {key} is not an object"
    return SessionInfo(
        chat_id=_chat_id(data.get("chatId", data.get("chat_id"))),
        language=_language(data.get("language", data.get("lang"))),
        preferences=_preferences(data.get("preferences")),
    ), ""


def _chat_id(value: Any) -> str | int | None:
    """A Telegram chat: an integer id (sent as text by n8n, often) or an ``@channel`` name."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return int(text)
        return text or None
    return value if isinstance(value, int) else None


def _language(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    return text if 0 < len(text) <= MAX_LANGUAGE_CHARS else None


def _preferences(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
