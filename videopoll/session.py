"""Restore the caller's session (chat id, language, preferences) from Redis.

The n8n main workflow keeps each user's session under ``session:{sessionId}``, as a JSON
string or as a hash. A request that names its ``chatId`` needs none of it; otherwise the
session supplies it. Bad or missing data is a reason, never an exception: the video is
delivered either way, and the job records why the chat could not be told.
"""

from __future__ import annotations

import json
from typing import Any

import redis
from pydantic import BaseModel, Field


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
            raw = client.get(key)
            data: Any = json.loads(raw) if raw else None
        elif kind == "hash":
            data = {_text(k): _text(v) for k, v in client.hgetall(key).items()}
        else:
            return None, f"session at {key} is a Redis {kind}"
    except (redis.RedisError, ValueError) as exc:
        return None, f"session at {key} unreadable: {type(exc).__name__}"
    if not isinstance(data, dict):
        return None, f"session at {key} is not an object"
    chat = data.get("chatId", data.get("chat_id"))
    if isinstance(chat, str) and chat.lstrip("-").isdigit():
        chat = int(chat)
    prefs = data.get("preferences", {})
    if isinstance(prefs, str):
        try:
            prefs = json.loads(prefs)
        except ValueError:
            prefs = {}
    language = data.get("language", data.get("lang"))
    return SessionInfo(
        chat_id=chat if isinstance(chat, (str, int)) and not isinstance(chat, bool) else None,
        language=str(language) if isinstance(language, str) else None,
        preferences=prefs if isinstance(prefs, dict) else {},
    ), ""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
