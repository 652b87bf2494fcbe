"""The fake Bot API speaks the real one's protocol over HTTP: results, errors, limits, scripts."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from videopoll.fake_telegram import FakeTelegram, start_in_thread
from videopoll.local_redis import free_port

BOT = "123456:fake-token"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeTelegram]:
    tg = start_in_thread(upload_max_bytes=1000)
    yield tg
    tg.stop()


@pytest.fixture
def tg(server: FakeTelegram) -> FakeTelegram:
    server.reset()
    return server


def call(tg: FakeTelegram, method: str, **kw: Any) -> requests.Response:
    return requests.post(f"{tg.base_url}/bot{BOT}/{method}", timeout=5, **kw)


def test_send_message_answers_a_message_and_is_recorded(tg: FakeTelegram) -> None:
    markup = {"inline_keyboard": [[{"text": "Extend", "callback_data": "ext:job_1"}]]}
    resp = call(tg, "sendMessage", json={"chat_id": 42, "text": "hi", "reply_markup": markup})
    assert resp.status_code == 200
    body = resp.json()
    assert body["ok"] is True
    assert set(body["result"]) == {"message_id", "date", "chat", "text"}
    assert body["result"]["chat"]["id"] == 42 and body["result"]["text"] == "hi"
    [recorded] = requests.get(f"{tg.base_url}/_fake/calls", timeout=5).json()
    assert recorded["method"] == "sendMessage" and recorded["chat_id"] == 42
    assert recorded["text"] == "hi" and recorded["reply_markup"] == markup
    assert recorded["answered"] == 200 and recorded["token_tail"] == BOT[-4:]


def test_send_video_records_an_upload_by_its_size(tg: FakeTelegram) -> None:
    video = b"\x00\x00\x00\x18ftypmp42" + b"v" * 500
    resp = call(tg, "sendVideo", params={"chat_id": "7", "caption": "veo3 · 8s"},
                files={"video": ("clip.mp4", video, "video/mp4")})
    result = resp.json()["result"]
    assert result["caption"] == "veo3 · 8s" and result["video"]["file_size"] == len(video)
    [recorded] = tg.calls("sendVideo")
    assert recorded["video"] == {"file_size": len(video), "file_name": "clip.mp4",
                                 "head": "ftyp"}
    assert recorded["chat_id"] == "7"  # as received: query parameters are strings


def test_send_video_takes_a_url_instead_of_a_file(tg: FakeTelegram) -> None:
    resp = call(tg, "sendVideo", data={"chat_id": 7, "video": "https://cdn.example/v.mp4"})
    assert resp.json()["ok"] is True
    assert tg.calls("sendVideo")[0]["video"] == "https://cdn.example/v.mp4"


def test_a_chunked_upload_is_read_whole(tg: FakeTelegram) -> None:
    boundary = "b0undary"
    parts = [f"--{boundary}\r\nContent-Disposition: form-data; name=\"video\"; "
             f"filename=\"v.mp4\"\r\nContent-Type: video/mp4\r\n\r\n".encode(),
             b"\x00\x00\x00\x18ftyp" + b"x" * 300, f"\r\n--{boundary}--\r\n".encode()]
    resp = call(tg, "sendVideo", params={"chat_id": 7}, data=iter(parts),
                headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert resp.json()["ok"] is True
    assert tg.calls("sendVideo")[0]["video"]["file_size"] == 308


@pytest.mark.parametrize(("method", "payload", "code", "description"), [
    ("sendMessage", {"text": "hi"}, 400, "Bad Request: chat_id is empty"),
    ("sendMessage", {"chat_id": 1, "text": " "}, 400, "Bad Request: message text is empty"),
    ("sendMessage", {"chat_id": 1, "text": "x" * 4097}, 400, "Bad Request: message is too long"),
    ("sendVideo", {"chat_id": 1}, 400, "Bad Request: there is no video in the request"),
    ("sendVideo", {"chat_id": 1, "video": "https://x/v.mp4", "caption": "c" * 1025}, 400,
     "Bad Request: message caption is too long"),
    ("sendMessage", {"chat_id": 1, "text": "t", "reply_markup": {"inline_keyboard": [[
        {"text": "Extend", "callback_data": "ext:" + "j" * 61}]]}}, 400,
     "Bad Request: BUTTON_DATA_INVALID"),
    ("editMessageText", {"chat_id": 1, "message_id": 5, "text": "t"}, 400,
     "Bad Request: message to edit not found"),
    ("sendSticker", {"chat_id": 1}, 404, "Not Found"),
])
def test_what_the_real_bot_api_refuses_is_refused(
    tg: FakeTelegram, method: str, payload: dict[str, Any], code: int, description: str
) -> None:
    resp = call(tg, method, json=payload)
    assert resp.status_code == code
    assert resp.json() == {"ok": False, "error_code": code, "description": description}
    assert tg.calls(method)[0]["answered"] == code


def test_an_upload_over_the_bot_limit_is_too_large(tg: FakeTelegram) -> None:
    resp = call(tg, "sendVideo", params={"chat_id": 7},
                files={"video": ("v.mp4", b"x" * 1001, "video/mp4")})
    assert resp.status_code == 413
    assert resp.json()["description"] == "Request Entity Too Large"


def test_edits_change_one_message_and_the_same_text_is_not_modified(tg: FakeTelegram) -> None:
    sent = call(tg, "sendMessage", json={"chat_id": 3, "text": "Generating… 1/15"}).json()
    message_id = sent["result"]["message_id"]
    edited = call(tg, "editMessageText", json={"chat_id": 3, "message_id": message_id,
                                               "text": "Generating… 2/15"}).json()
    assert edited["ok"] is True and edited["result"]["message_id"] == message_id
    again = call(tg, "editMessageText", json={"chat_id": 3, "message_id": message_id,
                                              "text": "Generating… 2/15"})
    assert again.status_code == 400
    assert again.json()["description"].startswith("Bad Request: message is not modified")
    other_chat = call(tg, "editMessageText", json={"chat_id": 4, "message_id": message_id,
                                                   "text": "x"})
    assert other_chat.json()["description"] == "Bad Request: message to edit not found"


def test_get_me_and_answer_callback_query(tg: FakeTelegram) -> None:
    me = requests.get(f"{tg.base_url}/bot{BOT}/getMe", timeout=5).json()
    assert me["ok"] is True and me["result"]["is_bot"] is True
    answered = call(tg, "answerCallbackQuery", json={"callback_query_id": "q1", "text": "Ok"})
    assert answered.json() == {"ok": True, "result": True}
    assert tg.calls("answerCallbackQuery")[0]["callback_query_id"] == "q1"


def test_a_scripted_429_answers_like_telegram_then_the_call_succeeds(tg: FakeTelegram) -> None:
    script = {"method": "sendMessage", "answers": [{"error_code": 429, "retry_after": 2}]}
    assert requests.post(f"{tg.base_url}/_fake/script", json=script, timeout=5).ok
    limited = call(tg, "sendMessage", json={"chat_id": 1, "text": "a"})
    assert limited.status_code == 429
    assert limited.json() == {"ok": False, "error_code": 429,
                              "description": "Too Many Requests: retry after 2",
                              "parameters": {"retry_after": 2}}
    assert call(tg, "sendMessage", json={"chat_id": 1, "text": "a"}).json()["ok"] is True
    assert [c["answered"] for c in tg.calls()] == [429, 200]


def test_a_chat_that_blocked_the_bot_stays_blocked_and_others_are_served(
    tg: FakeTelegram,
) -> None:
    tg.script("*", {"error_code": 403, "forever": True}, chat_id=8)
    for _ in range(3):
        blocked = call(tg, "sendMessage", json={"chat_id": 8, "text": "a"})
        assert blocked.status_code == 403
        assert blocked.json()["description"] == "Forbidden: bot was blocked by the user"
    assert call(tg, "sendMessage", json={"chat_id": 9, "text": "a"}).json()["ok"] is True


@pytest.mark.parametrize("code", [400, 500, 502])
def test_scripted_errors_carry_telegram_descriptions(tg: FakeTelegram, code: int) -> None:
    tg.script("sendVideo", {"error_code": code})
    resp = call(tg, "sendVideo", json={"chat_id": 1, "video": "https://x/v.mp4"})
    assert resp.status_code == code and resp.json()["ok"] is False
    assert resp.json()["error_code"] == code and "parameters" not in resp.json()


def test_the_cli_serves_on_the_port_it_is_given() -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "videopoll.fake_telegram", "--port",
                             str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        banner = proc.stdout.readline().decode() if proc.stdout else ""
        assert f"http://127.0.0.1:{port}" in banner
        deadline = time.monotonic() + 10
        while True:
            try:
                me = requests.get(f"http://127.0.0.1:{port}/bot{BOT}/getMe", timeout=2)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "the fake Bot API did not start"
                time.sleep(0.1)
        assert me.json()["result"]["username"] == "fake_bot"
        calls = requests.get(f"http://127.0.0.1:{port}/_fake/calls?method=getMe", timeout=2)
        assert [c["method"] for c in json.loads(calls.content)] == ["getMe"]
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0  # SIGTERM is a clean stop (a Procfile line)
