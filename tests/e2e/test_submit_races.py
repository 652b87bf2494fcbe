"""Duplicate submissions racing through two gunicorn worker processes at once, where each
process groups concurrent submissions into shared round trips (``group_commit``): one job
per task id and per Idempotency-Key, one 202 for it, and one first-poll message per job."""

from __future__ import annotations

import base64
import json
import uuid
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import redis
import requests

from tests.e2e.stack import BIN, Stack

COPIES = 3


def test_duplicates_sent_at_once_to_two_processes_make_one_job_each(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack(POLL_INTERVAL_SECONDS="600")
    stack.stop_process("worker1", timeout=30)  # nothing consumes: the queue shows every message
    stack.stop_process("api", timeout=30)
    stack._spawn("api", [str(BIN / "gunicorn"), "-c", "python:videopoll.gunicorn_conf",
                         "--workers", "2", "--bind", f"127.0.0.1:{stack.api_port}",
                         "videopoll.api:create_app()"])
    Stack.wait_until(lambda: _up(stack), 30, "the two-worker API")
    run = uuid.uuid4().hex[:8]
    posts: list[tuple[str, str, dict[str, Any], dict[str, str]]] = []
    for i in range(30):
        body = {"sessionId": f"s{i}", "taskId": f"veo_never_{run}_{i}", "model": "veo3"}
        posts += [(f"poll{i}", "/webhook/poll-video", body, {})] * COPIES
    for i in range(10):
        body = {"sessionId": f"g{i}", "model": "veo3", "prompt": f"a fox {i}"}
        posts += [(f"gen{i}", "/jobs", body, {"Idempotency-Key": f"{run}-{i}"})] * COPIES

    def post(item: tuple[str, str, dict[str, Any], dict[str, str]]) -> tuple[str, int, str]:
        group, path, body, headers = item
        resp = requests.post(f"{stack.api}{path}", json=body, headers=headers, timeout=30)
        return group, resp.status_code, resp.json()["jobId"]

    with ThreadPoolExecutor(len(posts)) as pool:
        answers = list(pool.map(post, posts))
    by_group: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for group, status, job_id in answers:
        by_group[group].append((status, job_id))
    for group, seen in by_group.items():
        assert len({job for _, job in seen}) == 1, (group, seen)
        assert sorted(status for status, _ in seen) == [200] * (COPIES - 1) + [202], (group, seen)
    jobs = {seen[0][1] for seen in by_group.values()}
    assert len(jobs) == 40
    client = redis.Redis.from_url(stack.env["REDIS_URL"], decode_responses=True)
    queued = [json.loads(m) for m in client.lrange("videopoll", 0, -1)]
    polls = [m for m in queued if m["headers"]["task"] == "videopoll.poll_job"]
    first = sorted(json.loads(_body(m))[0][0] for m in polls)
    assert first == sorted(jobs)  # one first poll per job, none for a duplicate


def _body(message: dict[str, Any]) -> str:
    return base64.b64decode(message["body"]).decode()


def _up(stack: Stack) -> bool:
    try:
        return requests.get(f"{stack.api}/healthz", timeout=5).status_code in (200, 503)
    except requests.RequestException:
        return False
