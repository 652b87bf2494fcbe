"""The fence holds where it breaks: separate processes racing one token, and interleavings
forced between a transaction's read and its commit."""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient

from tests.test_store import make_job
from videopoll.api import create_app
from videopoll.models import ErrorCode, JobRecord, JobStatus, ProviderResponse
from videopoll.polling import advance, fail
from videopoll.providers.kie.common import KieConfig
from videopoll.providers.kie.veo import KieVeoProvider
from videopoll.runtime import Runtime
from videopoll.store import JobStore, StoreTimings

PROCESSES = 12
ROUNDS = 100


def _racer(url: str, barrier: Any, wins: Any) -> None:
    store = JobStore(redis.Redis.from_url(url, decode_responses=True),
                     timings=StoreTimings(poll_lease_seconds=60))
    for token in range(1, ROUNDS + 1):
        barrier.wait()
        if store.claim("job_1", token) is not None:
            with wins.get_lock():
                wins[token - 1] += 1
        barrier.wait()  # every racer is done with this token before the next round


def test_twelve_processes_racing_each_token_have_exactly_one_winner(rt: Runtime) -> None:
    rt.store.create(make_job(rt))
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(PROCESSES)
    wins = ctx.Array("i", ROUNDS)
    procs = [ctx.Process(target=_racer, args=(rt.settings.redis_url, barrier, wins))
             for _ in range(PROCESSES)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * PROCESSES
    assert list(wins) == [1] * ROUNDS
    job = rt.store.get("job_1")
    assert job is not None and job.poll_token == ROUNDS + 1


@pytest.fixture
def interleave(rt: Runtime) -> Iterator[Callable[[Callable[[JobRecord], None]], None]]:
    """Run ``other`` once, from another connection, between our read and our commit.

    ``_stamp`` runs after a mutation decided and before MULTI/EXEC: the write made there is
    exactly another worker committing first, so our WATCH fails and the move is retried.
    """
    original = rt.store._stamp
    pending: list[Callable[[JobRecord], None]] = []
    other_store = JobStore(redis.Redis.from_url(rt.settings.redis_url, decode_responses=True),
                           timings=rt.store.timings)

    def stamp(job: JobRecord, before: JobStatus) -> None:
        if pending:
            change = pending.pop()
            other_store.update(job.job_id, lambda j: change(j))
        original(job, before)

    rt.store._stamp = stamp  # type: ignore[method-assign]
    yield pending.append
    rt.store._stamp = original  # type: ignore[method-assign]


def _set_status(status: JobStatus) -> Callable[[JobRecord], None]:
    def change(j: JobRecord) -> None:
        j.status = status
        if status is JobStatus.DELIVERING:
            j.delivery.storage_key = "job_1.mp4"
    return change


def test_fail_loses_to_a_cancel_that_commits_first(rt: Runtime, interleave: Any) -> None:
    rt.store.create(make_job(rt))
    interleave(_set_status(JobStatus.CANCELED))
    step = fail(rt, "job_1", ErrorCode.PROVIDER_TIMEOUT, "deadline")
    job = rt.store.get("job_1")
    assert job is not None and job.status is JobStatus.CANCELED
    assert step.action == "stop"  # no failure notice for a job the user canceled


@pytest.fixture
def client(rt: Runtime) -> FlaskClient:
    return create_app(rt.settings, rt).test_client()


def test_cancel_answers_409_when_the_job_finished_first(
    rt: Runtime, client: FlaskClient, interleave: Any
) -> None:
    rt.store.create(make_job(rt))
    interleave(_set_status(JobStatus.SUCCEEDED))
    resp = client.post("/jobs/job_1/cancel")
    assert resp.status_code == 409
    job = rt.store.get("job_1")
    assert job is not None and job.status is JobStatus.SUCCEEDED


class _OvertakenProvider(KieVeoProvider):
    """While this poll waits on the provider, a newer poll finds the video."""

    def __init__(self, rt: Runtime) -> None:
        super().__init__(KieConfig(base_url="http://127.0.0.1:9"))
        self.rt = rt
        self.calls = 0

    def fetch(self, task_id: str, variant: str | None = None) -> ProviderResponse:
        self.calls += 1
        if self.calls == 1:
            assert advance(self.rt, "job_1", 2).action == "deliver"
            return ProviderResponse(http_status=200, body={
                "code": 200, "msg": "success", "data": {"taskId": task_id, "successFlag": 0}})
        return ProviderResponse(http_status=200, body={
            "code": 200, "msg": "success",
            "data": {"taskId": task_id, "successFlag": 1,
                     "response": {"resultUrls": ["https://cdn.example/v.mp4"]}}})


def test_a_stale_running_answer_cannot_undo_delivering(rt: Runtime) -> None:
    """The two-beats incident: a late "running" must not turn delivering back to delayed."""
    job = make_job(rt)
    job.attempts = job.max_attempts - 1  # the stale answer would be the one that delays it
    rt.store.create(job)
    rt._providers["kie_veo"] = _OvertakenProvider(rt)

    step = advance(rt, "job_1", 1)

    after = rt.store.get("job_1")
    assert after is not None and after.status is JobStatus.DELIVERING
    assert after.output_url == "https://cdn.example/v.mp4"
    assert step.action == "stop"


def test_a_poll_whose_token_moved_on_commits_nothing(rt: Runtime, interleave: Any) -> None:
    rt.store.create(make_job(rt))
    claimed = rt.store.claim("job_1", 1)
    assert claimed is not None
    assert rt.store.claim("job_1", claimed.poll_token) is not None  # a newer turn
    before = rt.store.get("job_1")
    step = fail(rt, "job_1", ErrorCode.MODERATION_REJECTED, token=claimed.poll_token)
    assert step.action == "stop"
    assert rt.store.get("job_1") == before


def test_updates_report_the_committed_attempt_only(rt: Runtime, interleave: Any) -> None:
    rt.store.create(make_job(rt))
    interleave(lambda j: setattr(j, "attempts", 7))
    seen: list[int] = []

    def bump(j: JobRecord) -> int:
        seen.append(j.attempts)
        j.attempts += 1
        return j.attempts

    change = rt.store.update("job_1", bump)
    assert seen == [0, 7]  # the first try lost the race and ran again on the fresh record
    assert change.applied and change.outcome == 8
    assert change.job is not None and change.job.attempts == 8


def test_polling_a_job_after_its_deadline_is_bounded(rt: Runtime) -> None:
    job = make_job(rt)
    job.deadline_at = time.time() - 1
    rt.store.create(job)
    assert advance(rt, "job_1", 1).action == "finish"
    assert advance(rt, "job_1", 2).action == "stop"
