"""Fault injection: duplicate messages, lost messages, a worker killed with SIGKILL."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable

import pytest
import redis
import requests
from celery import Celery

from tests.e2e.stack import Stack
from videopoll.fake_provider import FakeProvider
from videopoll.models import PollVideoRequest
from videopoll.providers import get_model
from videopoll.settings import Settings
from videopoll.store import JobStore, StoreTimings
from videopoll.submission import poll_job_record


def publisher(stack: Stack) -> Celery:
    """A bare Celery client on the stack's broker: it sends raw task messages, like a redelivery."""
    return Celery(broker=stack.env["REDIS_URL"])


def record(stack: Stack, job_id: str) -> dict[str, object]:
    raw = redis.Redis.from_url(stack.env["REDIS_URL"]).get(f"videopoll:job:{job_id}")
    assert raw is not None
    data: dict[str, object] = json.loads(raw)
    return data


def test_duplicate_and_stale_poll_messages_make_one_provider_call(
    make_stack: Callable[..., Stack], fake: FakeProvider
) -> None:
    # first poll quickly, then every 60 s: any extra provider call can only come from our copies
    stack = make_stack(POLL_SCHEDULE="0.1,60", SWEEP_GRACE_SECONDS="120")
    task = f"veo_never_{uuid.uuid4().hex[:8]}"
    job_id = stack.post("/webhook/poll-video",
                        {"sessionId": "u", "taskId": task, "model": "veo3"}).json()["jobId"]
    stack.wait_until(lambda: fake.stats()["polls"].get(task) == 1, 10, "first poll")
    token = record(stack, job_id)["poll_token"]
    assert token == 2

    client = publisher(stack)
    for _ in range(5):
        client.send_task("videopoll.poll_job", args=[job_id, token], queue="videopoll")
    for _ in range(3):
        client.send_task("videopoll.poll_job", args=[job_id, 1], queue="videopoll")  # stale
    stack.wait_until(lambda: record(stack, job_id)["poll_token"] == 3, 10, "claim")
    time.sleep(1.0)

    assert fake.stats()["polls"][task] == 2  # one for the original, one for five copies
    assert record(stack, job_id)["attempts"] == 2


def test_lost_message_is_recovered_by_the_sweeper(
    make_stack: Callable[..., Stack], fake: FakeProvider
) -> None:
    """A record written with no message published (a crash in between) still completes."""
    stack = make_stack()
    task = f"veo_ok1_{uuid.uuid4().hex[:8]}"
    settings = Settings(redis_url=stack.env["REDIS_URL"], poll_interval_seconds=0.2)
    req = PollVideoRequest.model_validate({"sessionId": "u", "taskId": task, "model": "veo3"})
    job = poll_job_record(req, get_model("veo3"), settings, None)
    store = JobStore(redis.Redis.from_url(stack.env["REDIS_URL"], decode_responses=True),
                     timings=StoreTimings(sweep_grace_seconds=1.5))
    assert store.create(job)[1]

    view = stack.wait_terminal(job.job_id, 30)

    assert view["status"] == "succeeded"
    assert fake.stats()["polls"][task] == 2


@pytest.mark.slow
def test_worker_killed_mid_flight_every_job_finishes_once(
    make_stack: Callable[..., Stack], fake: FakeProvider
) -> None:
    stack = make_stack(POLL_INTERVAL_SECONDS="0.5", SWEEP_GRACE_SECONDS="1")
    tasks = [f"veo_ok4_{uuid.uuid4().hex[:8]}" for _ in range(8)]
    jobs = [
        stack.post("/webhook/poll-video", {"sessionId": f"u{i}", "taskId": t, "model": "veo3"})
        .json()["jobId"]
        for i, t in enumerate(tasks)
    ]
    stack.wait_until(
        lambda: sum(1 for t in tasks if fake.stats()["polls"].get(t)) >= 4, 20, "polls in flight"
    )
    stack.kill_worker()  # SIGKILL: held countdown messages stay unacked in Redis
    time.sleep(1.0)
    stack.start_worker()

    finals = [stack.wait_terminal(job_id, 60) for job_id in jobs]

    assert [v["status"] for v in finals] == ["succeeded"] * len(jobs)
    for job_id, view in zip(jobs, finals, strict=True):
        sends = [ln for ln in stack.notifications() if job_id in ln]
        assert len(sends) == 1, (job_id, sends)
        assert len(requests.get(view["outputUrl"], timeout=10).content) > 0
    results = redis.Redis.from_url(stack.env["REDIS_URL"]).xlen("videopoll:results")
    assert results == len(jobs)  # one analytics row per job, none twice
