"""Push callbacks end to end: the provider's callback, not the poll interval, sets the pace."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import requests

from tests.e2e.stack import Stack
from videopoll.fake_provider import FakeProvider
from videopoll.local_redis import free_port
from videopoll.providers.kie.common import sign_callback

KEY = "e2e-kie-webhook-key"


@pytest.fixture
def signing_fake(fake: FakeProvider) -> Iterator[FakeProvider]:
    fake.server.state.webhook_key = KEY
    fake.server.state.callback_delay = 1.0
    yield fake
    fake.server.state.webhook_key = None


@pytest.mark.parametrize("model", ["veo3_fast", "sora-2"])
def test_with_a_60s_poll_interval_a_job_finishes_right_after_the_callback(
    make_stack: Callable[..., Stack], signing_fake: FakeProvider, model: str
) -> None:
    port = free_port()
    stack = make_stack(api_port=port, PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
                       KIE_WEBHOOK_HMAC_KEY=KEY, POLL_INTERVAL_SECONDS="60",
                       CALLBACK_POLL_SCHEDULE="60", SWEEP_GRACE_SECONDS="120")
    began = time.monotonic()
    job_id = stack.post("/jobs", {"sessionId": "cb", "model": model,
                                  "prompt": f"a lighthouse (ok5) {uuid.uuid4().hex[:6]}"}
                        ).json()["jobId"]
    view = stack.wait_terminal(job_id, 30)
    took = time.monotonic() - began
    assert view["status"] == "succeeded"
    task = view["providerTaskId"]
    assert signing_fake.stats()["callbacks"][task] == 200  # our endpoint took the callback
    # the callback came 1 s after submit; without it the first poll was due only after 60 s
    assert took < 20, took
    assert signing_fake.stats()["polls"][task] == 1  # one poll, woken by the callback


def test_a_forged_callback_gets_401_and_changes_nothing(
    make_stack: Callable[..., Stack], signing_fake: FakeProvider
) -> None:
    port = free_port()
    stack = make_stack(api_port=port, PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
                       KIE_WEBHOOK_HMAC_KEY=KEY, POLL_INTERVAL_SECONDS="60",
                       CALLBACK_POLL_SCHEDULE="60", SWEEP_GRACE_SECONDS="120")
    task = f"veo_never_{uuid.uuid4().hex[:8]}"
    job_id = stack.post("/webhook/poll-video", {"sessionId": "cb", "taskId": task,
                                                "model": "veo3"}).json()["jobId"]
    forged = {"code": 200, "msg": "ok", "data": {"taskId": task, "info": {
        "resultUrls": ["http://127.0.0.1:9/evil.mp4"]}}}
    stamp = str(int(time.time()))
    for headers in ({}, {"X-Webhook-Timestamp": stamp,
                         "X-Webhook-Signature": sign_callback("wrong-key", task, stamp)}):
        resp = requests.post(f"{stack.api}/callbacks/kie_veo", json=forged, headers=headers,
                             timeout=5)
        assert resp.status_code == 401
    time.sleep(1.5)
    assert task not in signing_fake.stats()["polls"]  # no poll was woken
    assert stack.job(job_id)["status"] == "queued"  # and the body changed nothing
