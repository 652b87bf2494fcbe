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


def test_the_fields_are_normalised_and_odd_values_dropped(redis_url: str) -> None:
    r = client(redis_url)
    cases = {
        "float": ({"chatId": 123.0, "lang": " pt-BR "}, SessionInfo(chat_id=123, language="pt-BR")),
        "channel": ({"chatId": "@my_channel"}, SessionInfo(chat_id="@my_channel")),
        "blank": ({"chatId": "  ", "language": ""}, SessionInfo()),
        "bool": ({"chatId": True, "language": 7}, SessionInfo()),
        "fraction": ({"chatId": 1.5}, SessionInfo()),
        "long-language": ({"language": "x" * 100}, SessionInfo()),
        "prefs-list": ({"chatId": 5, "preferences": "[1, 2]"}, SessionInfo(chat_id=5)),
        "prefs-object": ({"preferences": {"quality": "hd"}},
                         SessionInfo(preferences={"quality": "hd"})),
    }
    for sid, (stored, _) in cases.items():
        r.set(f"session:{sid}", json.dumps(stored))
    for sid, (_, expected) in cases.items():
        assert restore(r, TEMPLATE, sid) == (expected, ""), sid


def test_a_bytes_client_reads_the_same(redis_url: str) -> None:
    raw = redis.Redis.from_url(redis_url)  # the job store's own client may not decode
    raw.hset("session:b", mapping={"chatId": "-42", "language": "fr"})
    assert restore(raw, TEMPLATE, "b") == (SessionInfo(chat_id=-42, language="fr"), "")


def test_an_oversized_session_is_refused_before_it_is_read(redis_url: str) -> None:
    r = client(redis_url)
    r.set("session:big", json.dumps({"chatId": 1, "history": "x" * (2 * 1024 * 1024)}))
    info, reason = restore(r, TEMPLATE, "big")
    assert info is None and "larger than" in reason
    # a hash is read field by field: only what a session supplies, however many fields
    r.hset("session:wide", mapping={"chatId": "9", **{f"m{i}": "x" * 1000 for i in range(3000)}})
    assert restore(r, TEMPLATE, "wide") == (SessionInfo(chat_id=9), "")


def test_an_unreachable_redis_is_a_reason(redis_url: str) -> None:
    dead = redis.Redis(host="127.0.0.1", port=9, socket_connect_timeout=1)
    info, reason = restore(dead, TEMPLATE, "u1")
    assert info is None and "unreadable" in reason
