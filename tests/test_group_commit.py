"""Concurrent submissions share a round trip, and every one still gets its own answer: a
created job, the job its key already names, or its own error; never a hang."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.connection import AbstractConnection
from redis.retry import Retry

from tests.test_store import make_job
from videopoll.group_commit import CreateBatcher
from videopoll.models import JobRecord
from videopoll.poll_messages import POLL_QUEUE, QueuedMessage, poll_message
from videopoll.runtime import Runtime
from videopoll.store import JobStore


class HeldStore(JobStore):
    """A store whose first write waits until ``release`` is set: the batch behind it fills
    while it "waits on the network"."""

    def __init__(self, store: JobStore) -> None:
        super().__init__(store.redis, store.prefix, store.timings)
        self.release = threading.Event()
        self.entered = threading.Event()
        self.held = False

    def create_many(self, items: list[tuple[JobRecord, QueuedMessage | None]],
                    connection: AbstractConnection) -> Any:
        if not self.held:
            self.held = True
            self.entered.set()
            assert self.release.wait(10)
        return super().create_many(items, connection)


def submit_all(batcher: CreateBatcher, jobs: list[JobRecord], held: HeldStore | None = None
               ) -> list[Any]:
    """Submit ``jobs`` from one thread each; each thread's answer (or exception)."""
    answers: list[Any] = [None] * len(jobs)

    def one(i: int) -> None:
        try:
            answers[i] = batcher.create(jobs[i], poll_message(jobs[i].job_id, 1))
        except BaseException as exc:  # a killed greenlet's BaseException included
            answers[i] = exc

    first = threading.Thread(target=one, args=(0,))
    first.start()
    if held is not None:
        assert held.entered.wait(5)  # the leader is "on the network"
    rest = [threading.Thread(target=one, args=(i,)) for i in range(1, len(jobs))]
    for t in rest:
        t.start()
    if held is not None:
        deadline = time.monotonic() + 5
        while len(batcher._queue) < len(jobs) - 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        held.release.set()
    for t in [first, *rest]:
        t.join(20)
    return answers


def test_submissions_queued_behind_a_write_go_in_one_round_trip(rt: Runtime) -> None:
    held = HeldStore(rt.store)
    batcher = CreateBatcher(held, wait_seconds=10)
    jobs = [make_job(rt, f"job_{i}", keys=[f"task:kie_veo:t{i}"]) for i in range(30)]
    answers = submit_all(batcher, jobs, held)
    assert [a[0].job_id for a in answers] == [j.job_id for j in jobs]
    assert all(created for _, created in answers)
    assert batcher.batches == 2  # the leader's own, then the 29 that queued behind it
    assert rt.store.redis.llen(POLL_QUEUE) == 30  # one first poll each
    assert all(rt.store.get(j.job_id) is not None for j in jobs)
    assert not batcher._writing and not batcher._queue


def test_two_submissions_of_one_task_in_one_batch_make_one_job(rt: Runtime) -> None:
    held = HeldStore(rt.store)
    batcher = CreateBatcher(held, wait_seconds=10)
    jobs = [make_job(rt, "job_lead", keys=["task:kie_veo:other"])] + [
        make_job(rt, f"job_{i}", keys=["task:kie_veo:same"]) for i in range(5)]
    answers = submit_all(batcher, jobs, held)
    created = [a for a in answers[1:] if a[1]]
    assert len(created) == 1
    assert {a[0].job_id for a in answers[1:]} == {created[0][0].job_id}
    assert rt.store.redis.llen(POLL_QUEUE) == 2  # the lead's job and the one created


def test_a_failed_round_trip_fails_each_job_in_it_and_the_next_batch_runs(rt: Runtime) -> None:
    dead = JobStore(redis.Redis(port=1, socket_connect_timeout=0.2,
                                retry=Retry(NoBackoff(), 0)), rt.store.prefix)
    batcher = CreateBatcher(dead, wait_seconds=5)
    answers = submit_all(batcher, [make_job(rt, f"job_{i}", keys=[]) for i in range(8)])
    assert all(isinstance(a, redis.ConnectionError) for a in answers), answers
    assert not batcher._writing and not batcher._queue  # nothing stuck behind the failure
    batcher.store = rt.store
    assert batcher.create(make_job(rt, "job_after", keys=[]))[1]


class Killed(BaseException):
    """What gevent raises in a greenlet it kills (GreenletExit is a BaseException too)."""


class DyingBatches(HeldStore):
    """The leader's own write goes through; the batch after it is killed mid-write."""

    writes = 0

    def create_many(self, items: Any, connection: Any) -> Any:
        self.writes += 1
        if self.writes == 2:
            raise Killed()
        return super().create_many(items, connection)


def test_a_killed_leader_still_answers_its_batch_and_hands_the_lead_on(rt: Runtime) -> None:
    held = DyingBatches(rt.store)
    batcher = CreateBatcher(held, wait_seconds=5)
    answers = submit_all(batcher, [make_job(rt, f"job_{i}", keys=[]) for i in range(6)], held)
    assert answers[0][1] is True  # the first went alone, before the batch behind it
    assert all(isinstance(a, Killed) for a in answers[1:]), answers
    assert not batcher._writing and not batcher._queue
    assert batcher.create(make_job(rt, "job_after", keys=[]))[1]  # single creates still work


def test_a_submission_nobody_takes_leaves_the_queue_unwritten(rt: Runtime) -> None:
    held = HeldStore(rt.store)
    batcher = CreateBatcher(held, wait_seconds=0.3)
    leader = threading.Thread(target=batcher.create, args=(make_job(rt, "job_lead", keys=[]),))
    leader.start()
    assert held.entered.wait(5)
    with pytest.raises(redis.TimeoutError):
        batcher.create(make_job(rt, "job_late", keys=[]))
    assert batcher._queue == []
    held.release.set()
    leader.join(5)
    assert rt.store.get("job_lead") is not None and rt.store.get("job_late") is None
    assert not batcher._writing


def test_a_batch_after_redis_lost_its_scripts_still_creates_every_job(rt: Runtime) -> None:
    """A restarted Redis has no scripts: each NOSCRIPT in the pipeline ran nothing, and that
    job alone is written again (loading the script)."""
    rt.store.create(make_job(rt, "job_warm", keys=[]))  # the script is loaded…
    rt.store.redis.script_flush()  # …and gone, as after a restart
    jobs = [make_job(rt, f"job_{i}", keys=[f"task:kie_veo:n{i}"]) for i in range(4)]
    connection = rt.store.redis.connection_pool.make_connection()
    results = rt.store.create_many([(j, poll_message(j.job_id, 1)) for j in jobs], connection)
    assert [r if isinstance(r, Exception) else (r[0].job_id, r[1]) for r in results] == [
        (j.job_id, True) for j in jobs]
    assert rt.store.redis.llen(POLL_QUEUE) == 4


def test_the_batch_connection_is_made_anew_after_redis_dropped_it(rt: Runtime) -> None:
    """The batcher holds a connection of its own; a server that closed it (a restart, a
    CLIENT KILL) costs no submission: it is checked and remade before the next batch."""
    batcher = CreateBatcher(rt.store, wait_seconds=5)
    assert batcher.create(make_job(rt, "job_before", keys=[]))[1]
    killed = rt.store.redis.client_kill_filter(_type="normal", skipme=True)
    assert killed >= 1
    stored, created = batcher.create(make_job(rt, "job_after_kill", keys=[]),
                                     poll_message("job_after_kill", 1))
    assert created and stored.job_id == "job_after_kill"
    assert rt.store.get("job_after_kill") is not None
    assert rt.store.redis.llen(POLL_QUEUE) == 1  # its first poll, once


def test_a_reply_left_unread_on_the_connection_is_never_taken_for_a_batch_answer(
        rt: Runtime) -> None:
    batcher = CreateBatcher(rt.store, wait_seconds=5)
    assert batcher.create(make_job(rt, "job_first", keys=[]))[1]
    own = batcher._own_connection()
    own.send_command("PING")  # a reply nobody reads (a write cut off mid-batch)
    time.sleep(0.1)
    stored, created = batcher.create(make_job(rt, "job_next", keys=["task:kie_veo:next"]))
    assert created and stored.job_id == "job_next"
    assert rt.store.redis.get(rt.store.idem_key("task:kie_veo:next")) == "job_next"
