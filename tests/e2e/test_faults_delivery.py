"""Delivery under failing services: S3 stopped, Telegram answering 5xx and 429 storms.

Each stage retries a bounded number of times with backoff, then the job ends in a clear
state; while retries remain the provider's URL is kept, so nothing is lost. S3 is a moto
server of this module's own (stopped and started on its port); Telegram is the fake Bot API.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator

import boto3
import pytest

from tests.conftest import MotoServer, aws_test_credentials
from tests.e2e.reliability import record
from tests.e2e.stack import Stack
from videopoll.fake_telegram import FakeTelegram

pytestmark = [pytest.mark.slow, pytest.mark.faults]

BOT = "123456:E2E-faults-bot"


@pytest.fixture(scope="module")
def own_s3() -> Iterator[MotoServer]:
    os.environ.update(aws_test_credentials())  # boto3 here and the stack read them
    server = MotoServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def bucket(own_s3: MotoServer) -> str:
    name = f"faults-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=own_s3.url).create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="module")
def delivering(make_stack: Callable[..., Stack], own_s3: MotoServer,
               fake_bot_api: FakeTelegram, bucket: str) -> Stack:
    return make_stack(STORAGE_URL=f"s3://{bucket}/media", S3_ENDPOINT_URL=own_s3.url,
                      NOTIFIERS="telegram", TELEGRAM_BOT_TOKEN=BOT,
                      TELEGRAM_API_URL=fake_bot_api.base_url)


def objects(s3: MotoServer, bucket: str, job_id: str) -> list[str]:
    listing = boto3.client("s3", endpoint_url=s3.url).list_objects_v2(Bucket=bucket)
    return [o["Key"] for o in listing.get("Contents", []) if job_id in o["Key"]]


def videos_to(tg: FakeTelegram, chat: int) -> int:
    return sum(1 for c in tg.calls("sendVideo")
               if c["chat_id"] == str(chat) and c.get("answered", 200) == 200)


def submit(stack: Stack, chat: int) -> str:
    resp = stack.post("/webhook/poll-video", {"sessionId": f"d{chat}", "model": "veo3",
                                              "taskId": f"veo_ok1_{uuid.uuid4().hex[:8]}",
                                              "chatId": chat})
    assert resp.status_code == 202, resp.text
    job_id: str = resp.json()["jobId"]
    return job_id


def test_s3_stopped_during_delivery_then_back_stores_once(
    delivering: Stack, own_s3: MotoServer, fake_bot_api: FakeTelegram, bucket: str
) -> None:
    own_s3.stop()
    job = submit(delivering, 7001)
    delivering.wait_status(job, "delivering", 20)
    time.sleep(3.0)  # the store stage fails against the stopped S3 and backs off
    assert delivering.job(job)["status"] == "delivering"  # retrying, not given up
    own_s3.start()  # moto keeps nothing: the bucket comes back empty
    boto3.client("s3", endpoint_url=own_s3.url).create_bucket(Bucket=bucket)
    back = time.monotonic()

    view = delivering.wait_terminal(job, 60)
    recovered = time.monotonic() - back
    assert view["status"] == "succeeded", view
    assert len(objects(own_s3, bucket, job)) == 1
    delivering.wait_until(lambda: videos_to(fake_bot_api, 7001) == 1, 10, "one video")
    time.sleep(1.0)
    assert videos_to(fake_bot_api, 7001) == 1
    record("S3 stopped during delivery, then back",
           "moto S3 stopped before the job's upload; started again (bucket recreated) 3 s "
           "after the job reached delivering", {"jobs lost": 0, "duplicates": 0,
                                                 "stored objects": 1, "videos sent": 1,
                                                 "done after S3 is back (s)": round(recovered, 1)})


def test_telegram_storms_end_in_one_video_or_a_clear_failure(
    delivering: Stack, own_s3: MotoServer, fake_bot_api: FakeTelegram, bucket: str
) -> None:
    """429s that stop in time deliver once; 5xx past every retry fail ``delivery_failed``,
    with the video still in storage."""
    fake_bot_api.script("sendVideo", *[{"error_code": 429, "retry_after": 1}] * 3, chat_id=7002)
    fake_bot_api.script("sendVideo", *[{"error_code": 502}] * 50, chat_id=7003)
    limited, storm = submit(delivering, 7002), submit(delivering, 7003)
    started = time.monotonic()

    ok = delivering.wait_terminal(limited, 60)
    failed = delivering.wait_terminal(storm, 150)
    gave_up = time.monotonic() - started

    assert ok["status"] == "succeeded", ok
    assert videos_to(fake_bot_api, 7002) == 1
    assert (failed["status"], failed["errorCode"]) == ("failed", "delivery_failed"), failed
    assert videos_to(fake_bot_api, 7003) == 0
    assert len(objects(own_s3, bucket, storm)) == 1  # the video is kept, not lost
    tries = sum(1 for c in fake_bot_api.calls("sendVideo") if c["chat_id"] == "7003")
    # the failure notice goes out as a text message, once
    delivering.wait_until(lambda: any(c["chat_id"] == "7003"
                                      for c in fake_bot_api.calls("sendMessage")), 20, "notice")
    time.sleep(1.0)
    notices = [c for c in fake_bot_api.calls("sendMessage") if c["chat_id"] == "7003"]
    assert len(notices) == 1, notices
    record("Telegram 429 storm (3 x retry_after 1)", "sendVideo answers 429 three times",
           {"jobs lost": 0, "duplicates": 0, "videos sent": 1, "outcome": "succeeded"})
    record("Telegram 5xx storm past every retry",
           "sendVideo answers 502 to every call",
           {"jobs lost": 0, "duplicates": 0, "sendVideo tries": tries,
            "gave up after (s)": round(gave_up, 1), "stored objects kept": 1,
            "outcome": f"failed delivery_failed: {failed['message']}"})
