"""Beat stopped for forty sweep intervals (ten minutes at the default 15 s): polling goes on.

Beat only drives recovery (the sweeper): lost messages, stuck deliveries, the ``delayed``
cadence and the hard deadline. Jobs whose messages are in the broker must not notice it is
gone; a job whose message was lost waits for beat, then finishes. Two beats at once are
``test_resilience``'s.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest
import redis

from tests.e2e.audit import Submitted, audit, unfinished
from tests.e2e.reliability import record
from tests.e2e.stack import Stack
from videopoll.fake_provider import FakeProvider
from videopoll.models import PollVideoRequest
from videopoll.providers import get_model
from videopoll.settings import Settings
from videopoll.store import JobStore, StoreTimings
from videopoll.submission import poll_job_record

pytestmark = [pytest.mark.slow, pytest.mark.faults]

SWEEP = 0.5
OUTAGE_INTERVALS = 40


def submit(stack: Stack, scenario: str) -> Submitted:
    task = f"{scenario}_{uuid.uuid4().hex[:8]}"
    resp = stack.post("/webhook/poll-video", {"sessionId": "b", "taskId": task, "model": "veo3"})
    assert resp.status_code == 202, resp.text
    return Submitted(resp.json()["jobId"], task, scenario, "succeeded")


def store_without_message(stack: Stack, scenario: str) -> Submitted:
    """A record written with no message published: the crash between the two writes."""
    task = f"{scenario}_{uuid.uuid4().hex[:8]}"
    settings = Settings(redis_url=stack.env["REDIS_URL"], poll_interval_seconds=0.2)
    req = PollVideoRequest.model_validate({"sessionId": "l", "taskId": task, "model": "veo3"})
    job = poll_job_record(req, get_model("veo3"), settings, None)
    store = JobStore(redis.Redis.from_url(stack.env["REDIS_URL"], decode_responses=True),
                     timings=StoreTimings(sweep_grace_seconds=float(stack.env[
                         "SWEEP_GRACE_SECONDS"])))
    assert store.create(job)[1]
    return Submitted(job.job_id, task, scenario, "succeeded")


def test_beat_stopped_polling_goes_on_and_only_recovery_waits(
    make_stack: Callable[..., Stack], fake: FakeProvider
) -> None:
    stack = make_stack(SWEEP_INTERVAL_SECONDS=str(SWEEP))
    before = [submit(stack, "veo_ok8") for _ in range(10)]  # mid-flight when beat stops
    stack.wait_until(lambda: all(fake.stats()["polls"].get(j.task) for j in before), 20,
                     "the first polls")
    stack.stop_process("beat")
    stopped = time.monotonic()
    sweeps = stack.ran("videopoll.sweep")

    during = [submit(stack, "veo_ok2") for _ in range(10)]
    lost = store_without_message(stack, "veo_ok1")
    stack.wait_until(lambda: not unfinished(stack, [j.job_id for j in before + during]),
                     OUTAGE_INTERVALS * SWEEP, "the jobs with messages to finish without beat")
    polled_without_beat = time.monotonic() - stopped
    time.sleep(max(0.0, OUTAGE_INTERVALS * SWEEP - polled_without_beat))
    assert stack.ran("videopoll.sweep") == sweeps  # beat was really gone
    assert fake.stats()["polls"].get(lost.task, 0) == 0  # nothing recovers it without beat
    assert stack.job(lost.job_id)["status"] == "queued"

    stack.start_beat("beat2")
    restarted = time.monotonic()
    final = stack.wait_terminal(lost.job_id, 30)
    recovered = time.monotonic() - restarted

    assert final["status"] == "succeeded"
    stats = fake.stats()
    found = audit(stack, [*before, *during, lost], stats["polls"], stats["downloads"])
    assert found.lost == [] and found.wrong == [] and found.duplicates == {}, found
    assert found.extra_polls == {}
    record("beat stopped for 40 sweep intervals",
           f"beat stopped (SIGTERM) with 10 jobs mid-flight; 10 jobs submitted and one stored "
           f"with its message lost during the outage; beat started again after "
           f"{OUTAGE_INTERVALS} intervals of {SWEEP} s",
           {"jobs lost": 0, "duplicates": 0,
            "jobs with messages done without beat (s)": round(polled_without_beat, 1),
            "lost-message job polled during the outage": 0,
            "lost-message job done after beat restarts (s)": round(recovered, 1)})
