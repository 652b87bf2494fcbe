"""Push callbacks end to end: the provider's callback, not the poll interval, sets the pace.

One stack with a 60-second poll interval serves a model of every family that pushes: KIE
(HMAC), OpenAI and Replicate (Standard Webhooks), fal (ED25519 against the fake's JWKS),
Luma, Ark, MiniMax (after its challenge) and Kling (unsigned: a token in the callback URL).
Each job must finish right after the fake calls back, with one status request, woken by it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import requests

from tests.e2e.stack import Stack
from videopoll.fake_provider import FakeProvider
from videopoll.fake_provider.openai import OpenAIFake
from videopoll.local_redis import free_port
from videopoll.providers.kie.common import sign_callback

KEY = "e2e-kie-webhook-key"
URL_SECRET = "e2e-callback-url-secret"
MODELS = ["veo3_fast", "sora-2", "kie_runway:runway-gen4", "openai:sora-2", "google/veo-3",
          "fal-ai/veo3", "ray-2", "seedance-1.0-pro", "hailuo-02", "kling-2.6"]


@pytest.fixture(scope="module")
def pushing(make_stack: Callable[..., Stack], fake: FakeProvider) -> Iterator[Stack]:
    fake.server.state.webhook_key = KEY
    fake.server.state.callback_delay = 1.0
    port = free_port()
    stack = make_stack(api_port=port, PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
                       KIE_WEBHOOK_HMAC_KEY=KEY, CALLBACK_URL_SECRET=URL_SECRET,
                       POLL_INTERVAL_SECONDS="60", CALLBACK_POLL_SCHEDULE="60",
                       SWEEP_GRACE_SECONDS="120")
    openai = next(f for f in fake.server.fakes if isinstance(f, OpenAIFake))
    openai.webhook_url = f"{stack.api}/callbacks/openai"  # set in OpenAI's dashboard
    yield stack
    openai.webhook_url = None
    fake.server.state.webhook_key = None


@pytest.mark.parametrize("model", MODELS)
def test_with_a_60s_poll_interval_a_job_finishes_right_after_the_callback(
    pushing: Stack, fake: FakeProvider, model: str
) -> None:
    began = time.monotonic()
    resp = pushing.post("/jobs", {"sessionId": "cb", "model": model,
                                  "prompt": f"a lighthouse (ok5) {uuid.uuid4().hex[:6]}"})
    assert resp.status_code == 202, resp.text
    view = pushing.wait_terminal(resp.json()["jobId"], 30)
    took = time.monotonic() - began
    assert view["status"] == "succeeded", view
    task = view["providerTaskId"]
    stats = fake.stats()
    assert stats["callbacks"][task] == 200  # our endpoint took the (verified) callback
    # the callback came 1 s after submit; without it the first poll was due only after 60 s
    assert took < 20, took
    assert stats["polls"][task] == 1  # one status request, woken by the callback


def test_a_forged_callback_gets_401_and_changes_nothing(
    pushing: Stack, fake: FakeProvider
) -> None:
    task = f"veo_never_{uuid.uuid4().hex[:8]}"
    job_id = pushing.post("/webhook/poll-video", {"sessionId": "cb", "taskId": task,
                                                  "model": "veo3"}).json()["jobId"]
    forged = {"code": 200, "msg": "ok", "data": {"taskId": task, "info": {
        "resultUrls": ["http://127.0.0.1:9/evil.mp4"]}}}
    stamp = str(int(time.time()))
    for headers in ({}, {"X-Webhook-Timestamp": stamp,
                         "X-Webhook-Signature": sign_callback("wrong-key", task, stamp)}):
        resp = requests.post(f"{pushing.api}/callbacks/kie_veo", json=forged, headers=headers,
                             timeout=5)
        assert resp.status_code == 401
    # an unsigned family's callback without the URL token we handed out
    luma = requests.post(f"{pushing.api}/callbacks/luma?token=guess",
                         json={"id": task, "state": "completed"}, timeout=5)
    assert luma.status_code == 401
    time.sleep(1.5)
    assert task not in fake.stats()["polls"]  # no poll was woken
    assert pushing.job(job_id)["status"] == "queued"  # and the body changed nothing
