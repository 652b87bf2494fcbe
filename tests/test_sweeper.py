"""The sweeper finds what messages lost, and only that."""

from __future__ import annotations

import time

from tests.test_store import make_job
from videopoll.models import JobRecord, JobStatus
from videopoll.runtime import Runtime
from videopoll.sweeper import sweep


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
