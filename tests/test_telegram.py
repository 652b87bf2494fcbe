"""The Bot API client, through pyTelegramBotAPI over real HTTP to the fake Bot API."""

from __future__ import annotations

import contextlib
import json
import pickle
import subprocess
import sys
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import boto3
import pytest
import requests

from tests.conftest import MotoServer
from tests.listeners import Listener
from videopoll.errors import DeliveryError, NotifyError
from videopoll.fake_telegram import FakeTelegram
from videopoll.local_redis import free_port
from videopoll.storage import build_storage
from videopoll.telegram import (
    TelegramBlocked,
    TelegramClient,
    TelegramError,
    TelegramRefused,
    TelegramRetryAfter,
    TelegramUnavailable,
)

TOKEN = "123456:client-test-token"
MiB = 1024 * 1024
MP4_HEAD = b"\x00\x00\x00\x18ftypmp42"
VEO_BUTTONS = [("Publish", "pub:job_1"), ("Regenerate", "regen:job_1"),
               ("Extend", "ext:job_1"), ("Get 1080p", "hd:job_1"), ("Get 4K", "uhd:job_1")]


@dataclass(frozen=True)
class FileVideo:
    path: Path

    @property
    def size_bytes(self) -> int:
        return self.path.stat().st_size

    def open(self) -> AbstractContextManager[IO[bytes]]:
        return self.path.open("rb")


def video_file(tmp_path: Path, size: int) -> FileVideo:
    path = tmp_path / f"v{size}.mp4"
    with path.open("wb") as out:
        out.write(MP4_HEAD)
        left = size - len(MP4_HEAD)
        while left > 0:
            out.write(b"v" * min(MiB, left))
            left -= MiB
    return FileVideo(path)


def client(api: FakeTelegram | Listener | str, upload_max_bytes: int = 50 * MiB,
           ) -> TelegramClient:
    url = api if isinstance(api, str) else api.base_url if isinstance(api, FakeTelegram) \
        else api.url
    return TelegramClient(TOKEN, url, upload_max_bytes)


def test_a_video_is_uploaded_with_its_caption_and_buttons(
    bot_api: FakeTelegram, tmp_path: Path
) -> None:
    video = video_file(tmp_path, 300_000)
    message_id = client(bot_api).send_video(4242, "veo3 · 8s · 1280x720", video, VEO_BUTTONS)
    [call] = bot_api.calls("sendVideo")
    assert call["chat_id"] == "4242" and call["caption"] == "veo3 · 8s · 1280x720"
    assert call["video"] == {"file_size": 300_000, "file_name": "video.mp4", "head": "ftyp"}
    rows = json.loads(call["reply_markup"])["inline_keyboard"]
    assert [(b["text"], b["callback_data"]) for b in rows[0]] == VEO_BUTTONS
    assert call["token_tail"] == TOKEN[-4:] and call["answered"] == 200
    assert isinstance(message_id, int) and message_id > 0


def test_a_video_streams_from_s3(bot_api: FakeTelegram, s3_server: MotoServer) -> None:
    bucket = f"tg-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=s3_server.url).create_bucket(Bucket=bucket)
    storage = build_storage(f"s3://{bucket}", endpoint_url=s3_server.url)
    stored = storage.put_stream("v.mp4", [MP4_HEAD, b"x" * (3 * MiB)])

    @dataclass(frozen=True)
    class Stored:
        size_bytes: int

        def open(self) -> AbstractContextManager[IO[bytes]]:
            return storage.open("v.mp4")

    client(bot_api).send_video(7, "", Stored(stored.size_bytes))
    [call] = bot_api.calls("sendVideo")
    assert call["video"]["file_size"] == stored.size_bytes and call["video"]["head"] == "ftyp"


def test_a_url_is_passed_for_telegram_to_fetch(bot_api: FakeTelegram) -> None:
    client(bot_api).send_video(7, "c", "https://cdn.example/v.mp4")
    assert bot_api.calls("sendVideo")[0]["video"] == "https://cdn.example/v.mp4"


def test_a_video_over_the_upload_limit_goes_as_a_link(
    bot_api: FakeTelegram, tmp_path: Path
) -> None:
    big = video_file(tmp_path, 2000)
    tg = client(bot_api, upload_max_bytes=1000)
    tg.send_video(9, "veo3 · 8s", big, VEO_BUTTONS, link="https://cdn.example/v.mp4")
    assert bot_api.calls("sendVideo") == []
    [message] = bot_api.calls("sendMessage")
    assert message["text"] == "veo3 · 8s\nhttps://cdn.example/v.mp4"
    assert len(json.loads(message["reply_markup"])["inline_keyboard"][0]) == len(VEO_BUTTONS)
    with pytest.raises(TelegramRefused, match="no link"):
        tg.send_video(9, "veo3", big)


def test_the_upload_limit_is_the_bot_api_s(bot_api: FakeTelegram, tmp_path: Path) -> None:
    """The fake refuses what the real Bot API refuses (413); the client never tries it."""
    limited = client(bot_api, upload_max_bytes=60 * MiB)
    with pytest.raises(TelegramRefused, match="413"):
        limited.send_video(9, "", video_file(tmp_path, 51 * MiB))
    client(bot_api).send_video(9, "", video_file(tmp_path, 51 * MiB), link="https://x/v")
    assert [c["method"] for c in bot_api.calls()] == ["sendVideo", "sendMessage"]


def test_429_says_when_to_retry_then_one_video_is_sent(
    bot_api: FakeTelegram, tmp_path: Path
) -> None:
    video = video_file(tmp_path, 1000)
    bot_api.script("sendVideo", {"error_code": 429, "retry_after": 3})
    tg = client(bot_api)
    with pytest.raises(TelegramRetryAfter) as info:
        tg.send_video(7, "c", video, VEO_BUTTONS)
    assert info.value.retry_after == 3.0 and not info.value.permanent
    assert isinstance(info.value, NotifyError) and isinstance(info.value, DeliveryError)
    tg.send_video(7, "c", video, VEO_BUTTONS)
    assert [c["answered"] for c in bot_api.calls("sendVideo")] == [429, 200]


def test_a_blocked_bot_is_permanent_for_that_chat(
    bot_api: FakeTelegram, tmp_path: Path
) -> None:
    bot_api.script("*", {"error_code": 403, "forever": True}, chat_id=8)
    tg = client(bot_api)
    with pytest.raises(TelegramBlocked) as info:
        tg.send_video(8, "c", video_file(tmp_path, 1000))
    assert info.value.permanent and info.value.error_code == 403
    assert "bot was blocked by the user" in info.value.reason
    with pytest.raises(TelegramBlocked):
        tg.send_text(8, "Your video is ready.")
    assert tg.send_text(9, "Your video is ready.") > 0  # other chats are served


@pytest.mark.parametrize(("code", "error", "permanent"), [
    (400, TelegramRefused, True), (401, TelegramRefused, True),
    (500, TelegramUnavailable, False), (502, TelegramUnavailable, False),
])
def test_answers_map_to_what_delivery_does_next(
    bot_api: FakeTelegram, code: int, error: type[TelegramError], permanent: bool
) -> None:
    bot_api.script("sendMessage", {"error_code": code})
    with pytest.raises(error) as info:
        client(bot_api).send_text(1, "hi")
    assert type(info.value) is error and info.value.permanent is permanent
    assert info.value.error_code == code and info.value.retry_after is None


def test_a_bad_request_from_the_bot_api_itself_is_permanent(bot_api: FakeTelegram) -> None:
    with pytest.raises(TelegramRefused, match="chat_id is empty"):
        client(bot_api).send_text("", "hi")


def test_edits_replace_one_message_and_repeating_a_text_is_fine(bot_api: FakeTelegram) -> None:
    tg = client(bot_api)
    message_id = tg.send_text(3, "Generating… 1/15")
    tg.edit_text(3, message_id, "Generating… 2/15")
    tg.edit_text(3, message_id, "Generating… 2/15")  # "not modified" is not a failure
    assert [c["answered"] for c in bot_api.calls("editMessageText")] == [200, 400]
    with pytest.raises(TelegramRefused, match="message to edit not found"):
        tg.edit_text(3, message_id + 999, "x")
    bot_api.script("editMessageText", {"error_code": 429, "retry_after": 2})
    with pytest.raises(TelegramRetryAfter):
        tg.edit_text(3, message_id, "Generating… 3/15")


def test_answer_callback_reaches_the_bot_api(bot_api: FakeTelegram) -> None:
    client(bot_api).answer_callback("q-1", "Extending your video…")
    [call] = bot_api.calls("answerCallbackQuery")
    assert call["callback_query_id"] == "q-1" and call["text"] == "Extending your video…"


def test_callback_data_over_64_bytes_is_refused_before_sending(bot_api: FakeTelegram) -> None:
    with pytest.raises(ValueError, match="64 bytes"):
        client(bot_api).send_text(1, "t", [("Extend", "ext:" + "j" * 61)])
    assert bot_api.calls() == []


def test_network_faults_are_retryable_and_never_show_the_token() -> None:
    with pytest.raises(TelegramUnavailable) as info:
        client(f"http://127.0.0.1:{free_port()}").send_text(1, "hi")
    assert not info.value.permanent
    assert TOKEN not in str(info.value) and TOKEN.split(":")[1] not in repr(info.value.args)


@pytest.mark.parametrize(("status", "error"), [(200, TelegramUnavailable),
                                               (502, TelegramUnavailable),
                                               (413, TelegramRefused)])
def test_a_proxy_answering_html_is_mapped_too(status: int, error: type[TelegramError]) -> None:
    proxy = Listener(statuses=[status])
    try:
        with pytest.raises(error):
            client(proxy).send_text(1, "hi")
        assert proxy.received[0].path.startswith(f"/bot{TOKEN}/sendMessage")
    finally:
        proxy.stop()


def test_a_stored_video_shorter_than_its_size_is_not_sent(
    bot_api: FakeTelegram, tmp_path: Path
) -> None:
    @dataclass(frozen=True)
    class Lying:
        size_bytes: int = 5000

        def open(self) -> AbstractContextManager[IO[bytes]]:
            return contextlib.nullcontext(video_file(tmp_path, 3000).path.open("rb"))

    with pytest.raises(TelegramUnavailable, match="ended at 3000 of 5000"):
        client(bot_api).send_video(7, "c", Lying())
    time.sleep(0.2)  # let the fake finish with the connection it was given
    assert bot_api.calls() == []  # a cut-off upload is no message


@pytest.mark.parametrize("error", [
    TelegramRetryAfter("telegram 429", 429, 3.0), TelegramBlocked("telegram 403", 403),
    TelegramRefused("telegram 400", 400), TelegramUnavailable("lost", 0, None, True),
])
def test_errors_survive_pickling_through_celery(error: TelegramError) -> None:
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is type(error) and back.args == error.args
    assert (back.permanent, back.retry_after, back.error_code) == (
        error.permanent, error.retry_after, error.error_code)


@pytest.fixture
def bot_api_process() -> Iterator[str]:
    """The fake Bot API as its own process, so this process's memory is the client's alone."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "videopoll.fake_telegram", "--port",
                             str(port)], stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while True:
        try:
            requests.get(f"{url}/_fake/calls", timeout=1)
            break
        except requests.ConnectionError:
            assert time.monotonic() < deadline, "the fake Bot API did not start"
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def test_an_upload_streams_with_flat_memory(bot_api_process: str, tmp_path: Path) -> None:
    video = video_file(tmp_path, 45 * MiB)
    tg = client(bot_api_process)
    tracemalloc.start()
    try:
        tg.send_video(7, "veo3", video, VEO_BUTTONS)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    [call] = requests.get(f"{bot_api_process}/_fake/calls", timeout=5).json()
    assert call["video"]["file_size"] == 45 * MiB
    print(f"peak traced memory uploading 45 MiB: {peak / MiB:.1f} MiB")
    assert peak < 8 * MiB, f"peak {peak / MiB:.1f} MiB"  # a 1 MiB chunk, not the video
