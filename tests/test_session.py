"""Session restore: the n8n workflow's session, as a JSON string or a hash, or a reason."""

from __future__ import annotations

import json

import redis

from videopoll.session import SessionInfo, restore

TEMPLATE = "session:{sessionId}"


def client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True)


def test_a_json_session_supplies_chat_language_and_preferences(redis_url: str) -> None:
    r = client(redis_url)
    r.set("session:u1", json.dumps({"chatId": "-100123", "language": "de",
                                    "preferences": {"quality": "hd"}}))
    info, reason = restore(r, TEMPLATE, "u1")
    assert (info, reason) == (SessionInfo(chat_id=-100123, language="de",
                                          preferences={"quality": "hd"}), "")


def test_a_hash_session_works_too(redis_url: str) -> None:
    r = client(redis_url)
    r.hset("session:u2", mapping={"chat_id": "42", "lang": "en",
                                  "preferences": json.dumps({"a": 1})})
    info, _ = restore(r, TEMPLATE, "u2")
    assert info == SessionInfo(chat_id=42, language="en", preferences={"a": 1})


def test_missing_or_bad_sessions_give_a_reason_not_an_exception(redis_url: str) -> None:
    r = client(redis_url)
    r.set("session:garbage", "{not json")
    r.set("session:list", json.dumps([1, 2]))
    r.rpush("session:wrongtype", "x")
    assert restore(r, TEMPLATE, "nobody") == (None, "no session at session:nobody")
    for sid in ("garbage", "list", "wrongtype"):
        info, reason = restore(r, TEMPLATE, sid)
        assert info is None and reason


def test_braces_in_a_session_id_are_not_placeholders(redis_url: str) -> None:
    r = client(redis_url)
    r.set("session:{x}", json.dumps({"chatId": 1}))
    info, _ = restore(r, TEMPLATE, "{x}")
    assert info is not None and info.chat_id == 1
