"""``videopoll stats`` over a results stream written the way delivery writes it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_store import make_job
from videopoll import delivery
from videopoll.models import ErrorCode, JobRecord, JobStatus
from videopoll.runtime import Runtime
from videopoll.stats import p95, report

REPO = Path(__file__).resolve().parents[1]


def finished(rt: Runtime, job_id: str, model: str, seconds: float, attempts: int,
             code: ErrorCode | None = None) -> None:
    """A finished job recorded by the real record stage."""
    job = make_job(rt, job_id, keys=[])
    job.model, job.attempts = model, attempts
    job.created_at = time.time() - seconds
    rt.store.create(job)

    def end(j: JobRecord) -> None:
        if code is None:
            j.status = JobStatus.DELIVERING
            j.delivery.storage_key = f"{job_id}.mp4"
        else:
            j.status, j.error_code = JobStatus.FAILED, code

    rt.store.update(job_id, end)
    delivery.record_result(rt, job_id)


@pytest.fixture
def filled(rt: Runtime) -> Runtime:
    rt.settings = rt.settings.model_copy(update={"model_prices": {"veo3": 2.0, "sora-2": 0.5}})
    for i, seconds in enumerate([60, 70, 80, 90, 300]):
        finished(rt, f"job_v{i}", "veo3", seconds, attempts=3)
    finished(rt, "job_vf", "veo3", 40, 1, ErrorCode.MODERATION_REJECTED)
    finished(rt, "job_s1", "sora-2", 100, 5)
    finished(rt, "job_s2", "sora-2", 50, 2, ErrorCode.PROVIDER_TIMEOUT)
    finished(rt, "job_s3", "sora-2", 50, 2, ErrorCode.PROVIDER_TIMEOUT)
    rt.store.create(make_job(rt, "job_running", keys=[]))  # one still in flight
    return rt


def test_per_model_times_failures_and_cost(filled: Runtime) -> None:
    rep = report(filled.settings, filled.store.redis)
    models = {m.model: m for m in rep.models}
    veo, sora = models["veo3"], models["sora-2"]
    assert (veo.jobs, veo.succeeded, sora.jobs, sora.succeeded) == (6, 5, 3, 1)
    assert veo.mean_seconds == pytest.approx(120, abs=1)
    assert veo.p95_seconds == pytest.approx(300, abs=1)
    assert veo.mean_attempts == 3
    assert veo.errors == {"moderation_rejected": 1}
    assert sora.errors == {"provider_timeout": 2}
    assert sora.failure_rate == pytest.approx(2 / 3, abs=1e-3)
    assert veo.cost_per_video == pytest.approx(2.0)  # failed jobs cost 0 here
    assert rep.capacity.in_flight == 1


def test_capacity_is_the_interval_times_the_status_budget(rt: Runtime) -> None:
    rt.settings = rt.settings.model_copy(update={
        "poll_interval_seconds": 60.0, "rate_limit_per_second": 10.0, "poll_schedule": []})
    for i in range(3):
        rt.store.create(make_job(rt, f"job_{i}", keys=[]))
    cap = report(rt.settings, rt.store.redis).capacity
    assert (cap.jobs_that_fit, cap.room_left, cap.polls_per_second_needed) == (600, 597, 0.05)


def test_the_nearest_rank_p95() -> None:
    assert p95([]) is None
    assert p95([5.0]) == 5.0
    assert p95([float(i) for i in range(1, 101)]) == 95.0


def test_the_command_prints_a_table_and_json(filled: Runtime) -> None:
    env = {"REDIS_URL": filled.settings.redis_url, "PATH": str(Path(sys.executable).parent)}
    run = [str(Path(sys.executable).parent / "videopoll"), "stats"]
    table = subprocess.run(run, env=env, capture_output=True, text=True, check=True).stdout
    assert "veo3" in table and "moderation_rejected 1" in table and "room for" in table
    data = json.loads(subprocess.run([*run, "--json"], env=env, capture_output=True,
                                     text=True, check=True).stdout)
    assert {m["model"] for m in data["models"]} == {"veo3", "sora-2"}


def test_an_unreachable_store_is_a_clear_error_without_the_url() -> None:
    env = {"REDIS_URL": "redis://:s3cret@127.0.0.1:1/0", "PATH": str(Path(sys.executable).parent)}
    done = subprocess.run([str(Path(sys.executable).parent / "videopoll"), "stats"], env=env,
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert "cannot read the job store" in done.stderr and "s3cret" not in done.stderr
