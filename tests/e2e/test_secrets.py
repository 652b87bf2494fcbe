"""Secrets never leave the process: not in logs, job records, analytics or broker messages.

The stack runs real jobs (a video delivered to Telegram and to a signed callback, a failure,
a provider that answers 401) with known secret values in its environment: the provider key,
the bot token, the callback signing secret, the KIE webhook key, S3 credentials. Then every
log line of every process and every key in the stack's Redis database (job records, channel
receipts, the analytics stream, the Celery queues whose messages Flower would show) is searched
for each of them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import boto3
import pytest
import redis

from tests.conftest import MotoServer
from tests.e2e.stack import Stack
from tests.listeners import Listener
from videopoll.fake_provider import FakeProvider
from videopoll.fake_telegram import FakeTelegram, start_in_thread

SECRETS = {
    "KIE_API_KEY": "kie-SECRET-7d1f0c9a2b",
    "TELEGRAM_BOT_TOKEN": "987654:SECRET-bot-token-Zq81",
    "CALLBACK_SECRET": "whsec_U0VDUkVULWNhbGxiYWNrLXNpZ25pbmc=",
    "KIE_WEBHOOK_HMAC_KEY": "SECRET-kie-hmac-44aa",
    "AWS_SECRET_ACCESS_KEY": "SECRET-aws-9c9c9c9c9c9c",
}


@pytest.fixture(scope="module")
def telegram() -> Iterator[FakeTelegram]:
    server = start_in_thread()
    yield server
    server.stop()


def _dump(r: redis.Redis) -> str:
    """Every key and value of the database, whatever its type."""
    parts: list[str] = []
    for key in r.scan_iter(count=500):
        kind = r.type(key)
        parts.append(str(key))
        if kind == b"string":
            parts.append(str(r.get(key)))
        elif kind == b"hash":
            parts.append(str(r.hgetall(key)))
        elif kind == b"list":
            parts.append(str(r.lrange(key, 0, -1)))
        elif kind == b"set":
            parts.append(str(r.smembers(key)))
        elif kind == b"zset":
            parts.append(str(r.zrange(key, 0, -1, withscores=True)))
        elif kind == b"stream":
            parts.append(str(r.xrange(key)))
    return "\n".join(parts)


def test_known_secrets_appear_in_no_log_record_or_message(
    make_stack: Callable[..., Stack], fake: FakeProvider, telegram: FakeTelegram,
    s3_server: MotoServer, callback_server: Listener,
) -> None:
    bucket = f"sec-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=s3_server.url).create_bucket(Bucket=bucket)
    stack = make_stack(
        STORAGE_URL=f"s3://{bucket}/v", S3_ENDPOINT_URL=s3_server.url,
        AWS_ACCESS_KEY_ID="testing", NOTIFIERS="console,telegram",
        TELEGRAM_API_URL=telegram.base_url, **SECRETS)
    callback_server.reset()
    tail = uuid.uuid4().hex[:6]
    jobs = [
        stack.post("/webhook/poll-video", {
            "sessionId": "s", "taskId": f"veo_ok1_{tail}", "model": "veo3", "chatId": 5151,
            "callbackUrl": callback_server.url}).json()["jobId"],
        stack.post("/webhook/poll-video", {
            "sessionId": "s", "taskId": f"veo_moderation1_{tail}", "model": "veo3",
            "chatId": 5151}).json()["jobId"],
        stack.post("/webhook/poll-video", {
            "sessionId": "s", "taskId": f"market_auth_{tail}", "model": "sora-2",
            "chatId": 5151}).json()["jobId"],
    ]
    finals = [stack.wait_terminal(job_id, 60)["status"] for job_id in jobs]
    assert finals == ["succeeded", "failed", "failed"]
    assert telegram.calls("sendVideo"), "the video reached the bot API (with the token)"
    assert callback_server.received, "the signed callback went out"

    haystacks = {name: stack.log(name) for name in stack.procs}
    haystacks["redis"] = _dump(redis.Redis.from_url(stack.env["REDIS_URL"]))
    haystacks["callback bodies"] = "\n".join(str(r) for r in callback_server.received)
    for where, text in haystacks.items():
        assert text, f"nothing to search in {where}"
        for name, secret in SECRETS.items():
            assert secret not in text, f"{name} leaked into {where}"
            # the distinctive half of a secret must not leak either (a truncated log line)
            assert secret[len(secret) // 2:] not in text, f"part of {name} leaked into {where}"
