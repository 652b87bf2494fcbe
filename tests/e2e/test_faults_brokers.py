"""The stack on both brokers: the flows, and a broker cut off mid-task.

(SIGTERM with held countdowns runs on both brokers in ``test_resilience``.)

The job store is Redis either way. ``redis``: the broker is the store's own Redis; ``amqp``:
a private vhost on the machine's RabbitMQ (see ``brokers.py``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest
import requests

from tests.e2e.brokers import RabbitVhosts, TcpGate
from tests.e2e.reliability import record
from tests.e2e.stack import TERMINAL, Stack
from videopoll.fake_provider import FakeProvider

pytestmark = pytest.mark.faults


def submit(stack: Stack, scenario: str, model: str = "veo3") -> str:
    body = {"sessionId": "u", "taskId": f"{scenario}_{uuid.uuid4().hex[:8]}", "model": model}
    resp = stack.post("/webhook/poll-video", body)
    assert resp.status_code == 202, resp.text
    job_id: str = resp.json()["jobId"]
    return job_id


def sent_to_user(stack: Stack, job_id: str) -> int:
    return sum(1 for line in stack.notifications() if job_id in line)


def wait_one_message(stack: Stack, job_id: str) -> None:
    stack.wait_until(lambda: sent_to_user(stack, job_id) == 1, 10, f"{job_id}'s one message")


def test_flows_end_the_same_on_each_broker(
    broker_stack: Callable[..., Stack], fake: FakeProvider
) -> None:
    stack = broker_stack()
    ok, market, refused = submit(stack, "veo_ok2"), submit(stack, "market_ok2", "sora-2"), \
        submit(stack, "veo_moderation1")
    generated = stack.post("/jobs", {"sessionId": "g", "model": "veo3_fast",
                                     "prompt": "a paper boat (ok1)"}).json()["jobId"]
    never = submit(stack, "veo_never")
    stack.wait_until(lambda: stack.job(never)["attempts"] >= 2, 20, "the never job polled")
    assert stack.post(f"/jobs/{never}/cancel", {}).status_code == 200

    ends = {job: stack.wait_terminal(job) for job in (ok, market, refused, generated)}

    assert [(v["status"], v["errorCode"]) for v in ends.values()] == [
        ("succeeded", None), ("succeeded", None), ("failed", "moderation_rejected"),
        ("succeeded", None)]
    assert ends[ok]["attempts"] == 3 == fake.stats()["polls"][ends[ok]["providerTaskId"]]
    assert requests.get(ends[ok]["outputUrl"], timeout=10).content[4:8] == b"ftyp"
    assert stack.job(never)["status"] == "canceled"
    for job in [*ends, never]:
        wait_one_message(stack, job)


def gated_broker_url(stack_broker: str, request: pytest.FixtureRequest) -> tuple[TcpGate, str]:
    """A broker URL whose connections pass through a gate the test can close."""
    if stack_broker == "amqp":
        rabbit: RabbitVhosts = request.getfixturevalue("rabbit")
        gate = TcpGate("127.0.0.1", 5672).open()
        return gate, rabbit.new_url(port=gate.port)
    own = urlsplit(request.getfixturevalue("redis_server"))
    gate = TcpGate("127.0.0.1", own.port or 6379).open()
    return gate, f"redis://127.0.0.1:{gate.port}/13"


def health(stack: Stack) -> tuple[int, dict[str, object]]:
    resp = requests.get(f"{stack.api}/healthz", timeout=15)
    return resp.status_code, resp.json()


@pytest.mark.slow
def test_broker_cut_off_then_back_every_accepted_job_finishes(
    broker_stack: Callable[..., Stack], request: pytest.FixtureRequest
) -> None:
    broker = request.node.callspec.params["broker_stack"]
    gate, url = gated_broker_url(broker, request)
    try:
        stack = broker_stack(BROKER_URL=url, PROVIDER_TIMEOUT_SECONDS="10")
        # a task is running when the broker goes: the fake answers this submit after 4 s
        before = stack.post("/jobs", {"sessionId": "b", "model": "veo3_fast",
                                      "prompt": "a kite (slowreply4)"}).json()["jobId"]
        stack.wait_until(lambda: stack.received("videopoll.poll_job") >= 1, 20, "the submit")
        time.sleep(1.0)

        gate.close()
        started = time.monotonic()
        resp = stack.post("/webhook/poll-video", {"sessionId": "o", "model": "veo3",
                                                  "taskId": f"veo_ok2_{uuid.uuid4().hex[:8]}"})
        answered_in = time.monotonic() - started
        # the record is stored, so the job is accepted: the sweeper enqueues it later
        assert resp.status_code == 202, resp.text
        during = resp.json()["jobId"]
        code, body = health(stack)
        assert code == 503 and str(body["checks"]["broker"]).startswith("error"), body  # type: ignore[index]
        assert body["checks"]["redis"] == "ok"  # type: ignore[index]
        time.sleep(3)  # workers and beat are cut off: they retry, they do not exit

        gate.open()
        reopened = time.monotonic()
        stack.wait_until(lambda: stack.exited() != {} or all(
            stack.job(j)["status"] in TERMINAL for j in (before, during)), 60, "both jobs")
        assert stack.exited() == {}, (stack.exited(), stack.log("worker1")[-2000:])
        ends = [stack.job(job) for job in (before, during)]
        recovered = time.monotonic() - reopened
        assert [v["status"] for v in ends] == ["succeeded", "succeeded"], ends
        stack.wait_until(lambda: health(stack)[0] == 200, 30, "healthz back to 200")
        after = submit(stack, "veo_ok1")
        assert stack.wait_terminal(after, 60)["status"] == "succeeded"
        assert stack.exited() == {}
        for job in (before, during, after):
            wait_one_message(stack, job)
    finally:
        gate.close()
    record(f"broker unreachable, then back [{broker}]",
           "connections to the broker cut (a TCP gate closed) while a worker runs a 4 s "
           "provider call; one job submitted during the cut; the gate reopened after 3 s",
           {"jobs lost": 0, "duplicates": 0, "submit answer during the cut": "202 (stored)",
            "submit answered in (s)": round(answered_in, 2),
            "/healthz during the cut": "503 broker: error",
            "both jobs done after reopening (s)": round(recovered, 1)})
