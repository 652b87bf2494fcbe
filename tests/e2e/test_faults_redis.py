"""The job store's Redis restarted under a stream of submissions, on each broker.

``test_resilience`` restarts Redis under jobs already accepted; here callers keep submitting
through the outage. Every answer must be a 202 for a stored job or a JSON 503 with
``Retry-After`` (never a 500, never a hang), every 202 must end, and a 503 retried with the
same ``Idempotency-Key`` must give one job. The Redis is the test's own, ``appendonly yes``.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.e2e.audit import Submitted, audit, wait_all_terminal
from tests.e2e.reliability import record
from tests.e2e.stack import Stack
from tests.e2e.test_resilience import RestartableRedis
from videopoll.fake_provider import FakeProvider

pytestmark = [pytest.mark.slow, pytest.mark.faults]


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RestartableRedis]:
    server = RestartableRedis(tmp_path).start()
    yield server
    server.stop()


@dataclass
class Answer:
    body: dict[str, object]
    key: str
    status: int  # 0: no answer within the client's 10 s
    json: dict[str, object]
    retry_after: str | None
    took: float


class Caller(threading.Thread):
    """Submits a job every 50 ms until stopped, keeping every answer."""

    def __init__(self, stack: Stack) -> None:
        super().__init__(daemon=True)
        self.stack = stack
        self.answers: list[Answer] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            body: dict[str, object] = {"sessionId": "c", "model": "veo3",
                                       "taskId": f"veo_ok2_{uuid.uuid4().hex}"}
            key = uuid.uuid4().hex
            started = time.monotonic()
            try:
                resp = self.stack.post("/webhook/poll-video", body,
                                       headers={"Idempotency-Key": key})
                answer = Answer(body, key, resp.status_code, resp.json(),
                                resp.headers.get("Retry-After"), time.monotonic() - started)
            except requests.RequestException:
                answer = Answer(body, key, 0, {}, None, time.monotonic() - started)
            self.answers.append(answer)
            time.sleep(0.05)


def test_redis_restart_under_submissions_loses_no_accepted_job(
    broker_stack: Callable[..., Stack], own_redis: RestartableRedis, fake: FakeProvider,
    request: pytest.FixtureRequest,
) -> None:
    broker = request.node.callspec.params["broker_stack"]
    overrides = {"REDIS_URL": f"{own_redis.url}/1"}
    if broker == "redis":
        overrides["BROKER_URL"] = overrides["REDIS_URL"]
    stack = broker_stack(**overrides)
    caller = Caller(stack)
    caller.start()
    time.sleep(2)

    own_redis.stop()
    down = time.monotonic()
    time.sleep(0.5)
    health = requests.get(f"{stack.api}/healthz", timeout=15)
    time.sleep(1.5)
    own_redis.start()
    back, seen = time.monotonic(), len(caller.answers)
    stack.wait_until(lambda: any(a.status == 202 for a in caller.answers[seen:]), 60,
                     "a 202 again")
    first_202 = time.monotonic() - back
    time.sleep(1)
    caller.halt.set()
    caller.join(15)

    answers = caller.answers
    assert {a.status for a in answers} <= {202, 503}, [(a.status, a.json) for a in answers
                                                       if a.status not in (202, 503)]
    refused = [a for a in answers if a.status == 503]
    assert refused, "the outage was never seen by a caller"
    for a in refused:
        assert a.retry_after and int(a.retry_after) > 0 and a.json["error"], a
    assert health.status_code == 503 and health.json()["checks"]["redis"].startswith("error")

    # a 503 said "may or may not be stored": the same key gives one job either way
    retried = [stack.post("/webhook/poll-video", a.body, headers={"Idempotency-Key": a.key})
               for a in refused]
    assert {r.status_code for r in retried} <= {200, 202}, [r.text for r in retried]
    jobs = [Submitted(str(a.json["jobId"]), str(a.body["taskId"]), "veo_ok2", "succeeded")
            for a in answers if a.status == 202]
    jobs += [Submitted(r.json()["jobId"], str(a.body["taskId"]), "veo_ok2", "succeeded")
             for a, r in zip(refused, retried, strict=True)]
    wait_all_terminal(stack, [j.job_id for j in jobs], 120)
    stats = fake.stats()
    found = audit(stack, jobs, stats["polls"], stats["downloads"])
    assert found.lost == [] and found.wrong == [] and found.duplicates == {}, found
    assert stack.exited() == {}, stack.exited()
    stack.wait_until(lambda: requests.get(f"{stack.api}/healthz", timeout=15).status_code
                     == 200, 30, "healthz 200")
    record(f"Redis (job store) restarted under submissions [{broker}]",
           "a caller submits every 50 ms; Redis (appendonly yes) stopped for 2 s and started "
           "again; every 503 retried with its Idempotency-Key",
           {"submits": len(answers), "202": len(answers) - len(refused), "503": len(refused),
            "500 or no answer": 0, "jobs lost": len(found.lost),
            "duplicates": found.duplicate_count,
            "slowest answer (s)": round(max(a.took for a in answers), 2),
            "outage seen (s)": round(back - down, 1),
            "first 202 after Redis is back (s)": round(first_202, 1)})
