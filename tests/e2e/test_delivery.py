"""Delivery to real users, whole stack: S3 (moto's server), Telegram (the fake Bot API), the
caller's signed callback, and one analytics event, with workers that fail on purpose."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator

import boto3
import pytest
import redis
import requests
from standardwebhooks import Webhook

from tests.conftest import MotoServer
from tests.e2e.stack import Stack
from tests.listeners import Listener
from videopoll.fake_provider import FakeProvider
from videopoll.fake_telegram import FakeTelegram, start_in_thread

SECRET = "whsec_" + "c2VjcmV0LWZvci10aGUtZTJlLXRlc3Rz"
BOT = "123456:E2E-bot-token"
TG_SECRET = "e2e-telegram-webhook-secret"


@pytest.fixture(scope="module")
def telegram() -> Iterator[FakeTelegram]:
    server = start_in_thread()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def delivered(make_stack: Callable[..., Stack], s3_server: MotoServer,
              telegram: FakeTelegram) -> Stack:
    bucket = f"e2e-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=s3_server.url).create_bucket(Bucket=bucket)
    return make_stack(
        STORAGE_URL=f"s3://{bucket}/media", S3_ENDPOINT_URL=s3_server.url,
        NOTIFIERS="console,telegram", TELEGRAM_BOT_TOKEN=BOT,
        TELEGRAM_API_URL=telegram.base_url, CALLBACK_SECRET=SECRET,
        TELEGRAM_WEBHOOK_SECRET=TG_SECRET,
        MODEL_PRICES='{"veo3": 2.0}')


def videos_sent(tg: FakeTelegram, chat: int) -> list[dict[str, object]]:
    return [c for c in tg.calls("sendVideo")
            if c["chat_id"] == str(chat) and c.get("answered", 200) == 200]


def analytics(stack: Stack, job_id: str) -> list[dict[str, str]]:
    rows = redis.Redis.from_url(stack.env["REDIS_URL"], decode_responses=True).xrange(
        "videopoll:results")
    return [row for _, row in rows if row["jobId"] == job_id]


def test_a_veo_job_ends_in_s3_in_the_chat_and_at_the_caller_once(
    delivered: Stack, telegram: FakeTelegram, listener: Listener, fake: FakeProvider,
    s3_server: MotoServer,
) -> None:
    chat = 9001
    job_id = delivered.post("/webhook/poll-video", {
        "sessionId": "u1", "taskId": f"veo_ok2_{uuid.uuid4().hex[:6]}", "model": "veo3",
        "chatId": chat, "callbackUrl": f"{listener.url}/resume/{chat}"}).json()["jobId"]
    view = delivered.wait_terminal(job_id)
    assert view["status"] == "succeeded"

    # S3: the object at the documented key, with its metadata, reachable by the link
    s3 = boto3.client("s3", endpoint_url=s3_server.url)
    bucket = delivered.env["STORAGE_URL"].removeprefix("s3://").split("/")[0]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])
            if job_id in o["Key"]]
    assert len(keys) == 1 and keys[0].startswith("media/videos/veo3/")
    head = s3.head_object(Bucket=bucket, Key=keys[0])
    assert head["ContentType"] == "video/mp4" and head["Metadata"]["job-id"] == job_id
    video = requests.get(view["outputUrl"], timeout=10)
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"
    assert "Signature" in view["outputUrl"]  # presigned at read time

    # Telegram: one video, with the Veo buttons
    delivered.wait_until(lambda: len(videos_sent(telegram, chat)) == 1, 10, "sendVideo")
    [sent] = videos_sent(telegram, chat)
    buttons = json.loads(str(sent["reply_markup"]))["inline_keyboard"][0]
    assert [b["text"] for b in buttons] == ["Publish", "Regenerate", "Extend", "Get 1080p",
                                            "Get 4K"]

    # the caller: one signed callback that verifies
    delivered.wait_until(lambda: any(r.path == f"/resume/{chat}" for r in listener.received),
                         10, "callback")
    calls = [r for r in listener.received if r.path == f"/resume/{chat}"]
    assert len(calls) == 1
    payload = Webhook(SECRET).verify(calls[0].body, calls[0].headers)
    assert payload["type"] == "video.succeeded" and payload["data"]["jobId"] == job_id

    # analytics: one event with real metadata and cost, no link
    [row] = analytics(delivered, job_id)
    assert json.loads(row["metadata"])["resolution"] == "160x90"
    assert json.loads(row["metadata"])["duration"] == 1.5
    assert row["cost"] == "2.0" and row["videoUrl"].startswith("s3://")
    time.sleep(1.5)  # later sweeps send nothing more
    assert len(videos_sent(telegram, chat)) == 1 and len(analytics(delivered, job_id)) == 1


def test_telegram_429_then_success_sends_exactly_one_video(
    delivered: Stack, telegram: FakeTelegram
) -> None:
    chat = 9002
    telegram.script("sendVideo", {"error_code": 429, "retry_after": 1})
    job_id = delivered.post("/webhook/poll-video", {
        "sessionId": "u2", "taskId": f"veo_ok1_{uuid.uuid4().hex[:6]}", "model": "veo3",
        "chatId": chat}).json()["jobId"]
    assert delivered.wait_terminal(job_id)["status"] == "succeeded"
    delivered.wait_until(lambda: len(videos_sent(telegram, chat)) == 1, 15, "the retried send")
    time.sleep(1.0)
    assert len(videos_sent(telegram, chat)) == 1


@pytest.mark.slow
def test_a_worker_killed_between_upload_and_notify_sends_one_message(
    delivered: Stack, telegram: FakeTelegram
) -> None:
    chat = 9003
    # Telegram is down at first, so the chain waits in notify with the video already stored
    telegram.script("sendVideo", *[{"error_code": 502}] * 2)
    job_id = delivered.post("/webhook/poll-video", {
        "sessionId": "u3", "taskId": f"veo_ok1_{uuid.uuid4().hex[:6]}", "model": "veo3",
        "chatId": chat}).json()["jobId"]
    delivered.wait_until(lambda: len(telegram.calls("sendVideo")) >= 1 and any(
        c["chat_id"] == str(chat) for c in telegram.calls("sendVideo")), 20, "first send")
    delivered.kill_worker()  # SIGKILL while the notify retry waits
    delivered.start_worker()
    final = delivered.wait_terminal(job_id, 60)
    assert final["status"] == "succeeded", final
    delivered.wait_until(lambda: len(videos_sent(telegram, chat)) == 1, 20,
                         f"the one video ({final.get('notifications')}, "
                         f"{[c.get('answered') for c in telegram.calls('sendVideo')]})")
    time.sleep(1.5)
    assert len(videos_sent(telegram, chat)) == 1


def test_a_result_url_that_is_gone_ends_output_missing_with_one_message(
    delivered: Stack, telegram: FakeTelegram
) -> None:
    chat = 9004
    job_id = delivered.post("/webhook/poll-video", {
        "sessionId": "u4", "taskId": f"veo_gone_{uuid.uuid4().hex[:6]}", "model": "veo3",
        "chatId": chat}).json()["jobId"]
    view = delivered.wait_terminal(job_id)
    assert (view["status"], view["errorCode"]) == ("failed", "output_missing")
    delivered.wait_until(lambda: any(c["chat_id"] == str(chat)
                                     for c in telegram.calls("sendMessage")), 10, "the notice")
    time.sleep(1.0)
    texts = [c["text"] for c in telegram.calls("sendMessage") if c["chat_id"] == str(chat)]
    assert texts == ["The provider finished but returned no video."]


def test_extend_tapped_twice_starts_one_job_and_delivers_the_stitched_video(
    delivered: Stack, telegram: FakeTelegram, fake: FakeProvider
) -> None:
    chat = 9005
    parent = delivered.post("/webhook/poll-video", {
        "sessionId": "u5", "taskId": f"veo_ok1_{uuid.uuid4().hex[:6]}", "model": "veo3",
        "chatId": chat}).json()["jobId"]
    assert delivered.wait_terminal(parent)["status"] == "succeeded"

    def tap() -> dict[str, str]:
        update = {"update_id": 1, "callback_query": {
            "id": uuid.uuid4().hex, "data": f"ext:{parent}", "from": {"id": chat},
            "message": {"message_id": 1, "chat": {"id": chat, "type": "private"}}}}
        answer: dict[str, str] = delivered.post(
            "/telegram/webhook", update,
            headers={"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}).json()
        return answer

    answers = [tap()["text"], tap()["text"]]
    assert answers == ["Extending your video…", "Already on it."]
    store = redis.Redis.from_url(delivered.env["REDIS_URL"], decode_responses=True)
    linked = [json.loads(store.get(k) or "{}") for k in store.keys("videopoll:job:*")]
    [child] = [j for j in linked if j.get("parent_job_id") == parent]
    view = delivered.wait_terminal(child["job_id"])
    assert view["status"] == "succeeded" and view["parentJobId"] == parent
    task = view["providerTaskId"]
    assert task.startswith("veo_stitched")
    assert fake.stats()["downloads"].get(task) == 1  # the stitched video, not the segment
    assert f"{task}_segment" not in fake.stats()["downloads"]
    delivered.wait_until(lambda: len(videos_sent(telegram, chat)) == 2, 10, "second video")
