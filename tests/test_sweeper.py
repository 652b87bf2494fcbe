"""The sweeper finds what messages lost, and only that."""

from __future__ import annotations

import time
from collections.abc import Callable
from itertools import pairwise

import pytest

from tests.test_store import make_job
from videopoll import delivery
from videopoll.models import ErrorCode, JobRecord, JobStatus
from videopoll.polling import fail
from videopoll.runtime import Runtime, build_runtime
from videopoll.settings import Settings
from videopoll.sweeper import MAX_OUTBOX_TRIES, sweep


def test_overdue_poll_is_re_enqueued_with_the_current_token(rt: Runtime) -> None:
    rt.store.create(make_job(rt))
    rt.store.claim("job_1", 1)  # a worker took it … and died: the lease runs out
    now = time.time() + rt.settings.poll_lease_seconds + rt.settings.sweep_grace_seconds + 1
    steps = list(sweep(rt, now))
    assert [(j, s.action, s.token) for j, s in steps] == [("job_1", "poll", 2)]
    assert list(sweep(rt, now)) == []  # pushed on: not re-enqueued on every sweep


def test_a_job_on_time_is_left_alone(rt: Runtime) -> None:
    rt.store.create(make_job(rt))
    assert list(sweep(rt, time.time())) == []  # within the grace period


def test_delayed_job_is_polled_at_its_slow_cadence(rt: Runtime) -> None:
    rt.store.create(make_job(rt))

    def delay(j: JobRecord) -> None:
        j.status = JobStatus.DELAYED
        j.next_poll_at = time.time() + 10

    rt.store.update("job_1", delay)
    assert list(sweep(rt, time.time() + 5)) == []
    assert [s.action for _, s in sweep(rt, time.time() + 11)] == ["poll"]


def test_deadline_fails_the_job(rt: Runtime) -> None:
    rt.store.create(make_job(rt))
    steps = list(sweep(rt, time.time() + 3600))
    assert [s.action for _, s in steps] == ["finish"]
    job = rt.store.get("job_1")
    assert job is not None and job.error_code is not None
    assert job.error_code.value == "provider_timeout"


def test_stuck_delivery_is_restarted(rt: Runtime) -> None:
    rt.store.create(make_job(rt))
    rt.store.update("job_1", lambda j: setattr(j, "status", JobStatus.DELIVERING))
    later = time.time() + rt.settings.delivery_lease_seconds + 1
    assert [s.action for _, s in sweep(rt, later)] == ["deliver"]


def _overdue_poll(rt: Runtime) -> float:
    rt.store.create(make_job(rt))
    rt.store.claim("job_1", 1)
    return time.time() + rt.settings.poll_lease_seconds + rt.settings.sweep_grace_seconds + 1


def test_two_sweeps_reading_one_due_list_re_enqueue_once(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = _overdue_poll(rt)
    listed = rt.store.due_jobs(now)
    monkeypatch.setattr(rt.store, "due_jobs", lambda *_a, **_k: list(listed))  # both read it
    first, second = sweep(rt, now), sweep(rt, now)
    assert [s.action for _, s in first] == ["poll"]
    assert list(second) == []


def _delivering(rt: Runtime, started: float | None = None, stored: bool = False) -> None:
    rt.store.create(make_job(rt))

    def delivering(j: JobRecord) -> None:
        j.status = JobStatus.DELIVERING
        j.delivery_started_at = time.time() if started is None else started
        if stored:
            j.delivery.storage_key = "videos/veo3/job_1.mp4"

    rt.store.update("job_1", delivering)


def _overdue_sweeps(rt: Runtime, times: int, each: Callable[[], None] = lambda: None
                    ) -> list[str]:
    """Sweep ``times`` times, a delivery lease apart; ``each`` runs before every sweep."""
    actions: list[str] = []
    later = time.time()
    for _ in range(times):
        each()
        later += rt.settings.delivery_lease_seconds + 1
        actions += [s.action for _, s in sweep(rt, later)]
    return actions


def _short_lease(settings: Settings) -> Runtime:
    """Leases short enough that every re-run fits in the delivery budget."""
    return build_runtime(settings.model_copy(update={"delivery_lease_seconds": 60}))


def _ends(rt: Runtime) -> tuple[JobStatus, ErrorCode | None]:
    job = rt.store.get("job_1")
    assert job is not None
    return job.status, job.error_code


def test_a_delivery_whose_worker_dies_each_time_ends_delivery_failed(
    settings: Settings,
) -> None:
    """Each run begins storing the video and dies (the stage's lease runs out): after
    ``max_delivery_runs`` re-runs the job fails instead of crashing workers for ever."""
    rt = _short_lease(settings)
    _delivering(rt)

    def begins_and_dies() -> None:
        assert rt.store.begin_stage("job_1", "store", 0.001, counted=True) is not None
        time.sleep(0.005)  # its lease runs out

    runs = rt.settings.max_delivery_runs
    actions = _overdue_sweeps(rt, runs + 3, begins_and_dies)
    assert actions[:runs + 1] == ["deliver"] * runs + ["finish"]
    assert set(actions[runs + 1:]) <= {"finish"}  # the failure notice stays owed until sent
    assert _ends(rt) == (JobStatus.FAILED, ErrorCode.DELIVERY_FAILED)


def test_a_chain_that_never_ran_is_resent_without_counting(settings: Settings) -> None:
    """Queued behind a backlog (or its message lost), the chain never began storing: those
    re-sends are not failures; only the budget in time ends the job."""
    rt = _short_lease(settings)
    _delivering(rt)
    times = rt.settings.max_delivery_runs + 3
    assert _overdue_sweeps(rt, times) == ["deliver"] * times
    assert _ends(rt) == (JobStatus.DELIVERING, None)
    past_budget = time.time() + rt.settings.delivery_budget_seconds + 1
    assert [s.action for _, s in sweep(rt, past_budget)] == ["finish"]
    assert _ends(rt) == (JobStatus.FAILED, ErrorCode.DELIVERY_FAILED)


def test_delivery_budget_in_time_ends_it_too(rt: Runtime) -> None:
    _delivering(rt, started=time.time() - rt.settings.delivery_budget_seconds - 1)
    later = time.time() + rt.settings.delivery_lease_seconds + 1
    assert [s.action for _, s in sweep(rt, later)] == ["finish"]


def test_a_stored_videos_queued_chain_is_resent_without_giving_up(settings: Settings) -> None:
    """Behind a backlog the notify step waits longer than the lease: the video is stored,
    so the sweeper keeps re-sending the chain rather than fail a job whose user may already
    have been told it is ready (seen under the kill -9 test: "ready", then "failed")."""
    rt = _short_lease(settings)
    _delivering(rt, stored=True)
    times = rt.settings.max_delivery_runs + 3
    assert _overdue_sweeps(rt, times) == ["deliver"] * times
    assert _ends(rt) == (JobStatus.DELIVERING, None)


def test_a_stored_video_past_the_delivery_budget_ends_succeeded(rt: Runtime) -> None:
    _delivering(rt, started=time.time() - rt.settings.delivery_budget_seconds - 1, stored=True)
    later = time.time() + rt.settings.delivery_lease_seconds + 1
    assert [s.action for _, s in sweep(rt, later)] == ["finish"]  # tell whoever was not told
    assert _ends(rt) == (JobStatus.SUCCEEDED, None)
    job = rt.store.get("job_1")
    assert job is not None and job.delivery.storage_key == "videos/veo3/job_1.mp4"


def test_an_unreadable_record_is_quarantined_and_the_others_are_swept(rt: Runtime) -> None:
    now = _overdue_poll(rt)
    rt.store.redis.set(rt.store.job_key("job_bad"), "[" * 300 + "]" * 300)
    rt.store.redis.zadd(rt.store.due_key, {"job_bad": 0})
    steps = list(sweep(rt, now))
    assert [(j, s.action) for j, s in steps] == [("job_1", "poll")]
    assert rt.store.redis.zscore(rt.store.quarantine_key, "job_bad") is not None
    assert rt.store.redis.zscore(rt.store.due_key, "job_bad") is None


def test_a_failure_notice_survives_a_lost_publish(rt: Runtime) -> None:
    """``fail`` committed but the finish chain was never published: the outbox sweep runs it."""
    rt.store.create(make_job(rt))
    assert fail(rt, "job_1", ErrorCode.MODERATION_REJECTED).action == "finish"
    # ... and the worker died before publishing the chain
    assert list(sweep(rt, time.time())) == []  # not before the grace period
    later = time.time() + rt.settings.sweep_grace_seconds + 1
    assert [(j, s.action) for j, s in sweep(rt, later)] == [("job_1", "finish")]
    assert list(sweep(rt, later)) == []  # taken: not re-run on every sweep
    delivery.record_result(rt, "job_1")  # the chain ran to its end
    much_later = later + rt.settings.delivery_lease_seconds + 1
    assert list(sweep(rt, much_later)) == []


def _resends(rt: Runtime, start: float, until: float, died: bool = False) -> list[float]:
    """Sweep once a second from ``start`` to ``until``; when each re-run was sent. With
    ``died``, every re-run is picked up by a worker that dies before its notify step ends."""
    sent: list[float] = []
    now = start
    while now < until and rt.store.redis.zscore(rt.store.outbox_key, "job_1") is not None:
        if [s.action for _, s in sweep(rt, now)] == ["finish"]:
            sent.append(now)
            if died:
                rt.store.mark_chain("job_1", "started", now=now + 0.5)
        now += 1.0
    return sent


def test_a_chain_whose_worker_keeps_dying_is_re_run_a_bounded_number_of_times(
    rt: Runtime
) -> None:
    rt.store.create(make_job(rt))
    fail(rt, "job_1", ErrorCode.MODERATION_REJECTED)
    rt.store.mark_chain("job_1", "started")  # the first chain's worker died mid-notify
    start = time.time() + rt.settings.sweep_grace_seconds + 1
    lease = rt.settings.delivery_lease_seconds
    sent = _resends(rt, start, start + (MAX_OUTBOX_TRIES + 3) * (lease + 2), died=True)
    assert len(sent) == MAX_OUTBOX_TRIES
    assert all(b - a >= lease for a, b in pairwise(sent))
    assert rt.store.redis.zcard(rt.store.outbox_key) == 0  # given up, and said so in the log


def test_a_chain_queued_behind_a_backlog_is_never_counted_as_lost(rt: Runtime) -> None:
    """Its re-runs come at growing intervals and do not use up the crash bound: only the
    delivery budget ends them."""
    rt.store.create(make_job(rt))
    fail(rt, "job_1", ErrorCode.MODERATION_REJECTED)  # its chain waits in the queue
    s = rt.settings
    start = time.time() + s.sweep_grace_seconds + 1
    sent = _resends(rt, start, start + s.delivery_budget_seconds + 2 * s.delivery_lease_seconds)
    assert len(sent) > MAX_OUTBOX_TRIES
    gaps = [b - a for a, b in pairwise(sent)]
    assert gaps == sorted(gaps) and gaps[0] < gaps[-1] <= s.delivery_lease_seconds + 1
    assert sent[-1] - sent[0] <= s.delivery_budget_seconds + s.delivery_lease_seconds
    assert rt.store.redis.zcard(rt.store.outbox_key) == 0  # the budget, not the count, ended it


def test_a_chain_that_notified_and_waits_for_its_record_step_is_not_counted(
    rt: Runtime
) -> None:
    rt.store.create(make_job(rt))
    fail(rt, "job_1", ErrorCode.MODERATION_REJECTED)
    start = time.time() + rt.settings.sweep_grace_seconds + 1
    rt.store.mark_chain("job_1", "started", now=start - 1)
    rt.store.mark_chain("job_1", "ended", now=start - 0.5)  # record_result is queued
    assert [s.reason for _, s in sweep(rt, start)] == ["notify/record chain overdue"]
    assert rt.store.outbox_runs("job_1").lapsed == 0


def test_a_chain_running_right_now_is_left_alone(rt: Runtime) -> None:
    rt.store.create(make_job(rt))
    fail(rt, "job_1", ErrorCode.MODERATION_REJECTED)
    stage = f"notify:{rt.notifiers[0].name}"
    assert rt.store.begin_stage("job_1", stage, 30.0) is not None  # a worker is sending
    later = time.time() + rt.settings.sweep_grace_seconds + 1
    assert list(sweep(rt, later)) == []
    assert list(sweep(rt, later + 1)) == []  # pushed back by a lease, not re-checked at once


def test_a_delayed_job_is_failed_at_its_deadline_not_at_its_next_slow_poll(rt: Runtime) -> None:
    job = make_job(rt)
    job.deadline_at = time.time() + 5
    rt.store.create(job)

    def delay(j: JobRecord) -> None:
        j.status = JobStatus.DELAYED
        j.next_poll_at = time.time() + 3600

    rt.store.update("job_1", delay)
    assert [s.action for _, s in sweep(rt, time.time() + 6)] == ["finish"]
