"""One poll turn against the real fake provider over HTTP, without Celery in the way."""

from __future__ import annotations

import time
import uuid

import pytest

from videopoll.fake_provider import FakeProvider
from videopoll.models import ErrorCode, GenerateRequest, JobStatus, PollVideoRequest
from videopoll.polling import advance
from videopoll.providers import get_model
from videopoll.runtime import Runtime, build_runtime
from videopoll.settings import Settings
from videopoll.submission import generate_job_record, poll_job_record


@pytest.fixture
def prt(settings: Settings, fake: FakeProvider) -> Runtime:
    return build_runtime(settings.model_copy(update={"kie_base_url": fake.base_url}))


def submit(rt: Runtime, scenario: str, attempt: int = 1) -> tuple[str, str]:
    task = f"{scenario}_{uuid.uuid4().hex[:8]}"
    req = PollVideoRequest.model_validate(
        {"sessionId": "s", "taskId": task, "model": "veo3", "attempt": attempt})
    job = poll_job_record(req, get_model("veo3"), rt.settings, None)
    rt.store.create(job)
    return job.job_id, task


def drive(rt: Runtime, job_id: str, turns: int = 50) -> list[str]:
    """Carry out polls the way the task would, minus the countdowns."""
    actions = []
    token = 1
    for _ in range(turns):
        step = advance(rt, job_id, token)
        actions.append(step.action)
        if step.action != "poll":
            break
        token = step.token
    return actions


def test_running_then_success_hands_over_to_delivery(prt: Runtime, fake: FakeProvider) -> None:
    job_id, task = submit(prt, "veo_ok2")
    assert drive(prt, job_id) == ["poll", "poll", "deliver"]
    job = prt.store.get(job_id)
    assert job is not None
    assert job.status is JobStatus.DELIVERING
    assert job.output_url == f"{fake.base_url}/files/{task}.mp4"
    assert job.attempts == 3


def test_a_duplicate_message_makes_no_provider_call(prt: Runtime, fake: FakeProvider) -> None:
    job_id, task = submit(prt, "veo_never")
    first = advance(prt, job_id, 1)
    assert [advance(prt, job_id, 1).action for _ in range(3)] == ["stop"] * 3
    assert fake.stats()["polls"][task] == 1
    assert advance(prt, job_id, first.token).action == "poll"
    assert fake.stats()["polls"][task] == 2


def test_moderation_fails_with_its_code(prt: Runtime) -> None:
    job_id, _ = submit(prt, "veo_moderation0")
    assert drive(prt, job_id) == ["finish"]
    job = prt.store.get(job_id)
    assert job is not None
    assert (job.status, job.error_code) == (JobStatus.FAILED, ErrorCode.MODERATION_REJECTED)
    assert "flagged" in job.provider_message


def test_budget_exhausted_goes_delayed_and_sends_no_message(prt: Runtime) -> None:
    job_id, _ = submit(prt, "veo_never")
    actions = drive(prt, job_id)
    assert actions == ["poll"] * 4 + ["stop"]  # max_attempts=5 in the test settings
    job = prt.store.get(job_id)
    assert job is not None and job.status is JobStatus.DELAYED
    assert job.next_poll_at is not None
    assert job.next_poll_at >= time.time() + 0.1  # the delayed cadence, not the fast one


def test_n8n_resume_counts_earlier_attempts(prt: Runtime) -> None:
    job_id, _ = submit(prt, "veo_never", attempt=5)
    assert drive(prt, job_id) == ["stop"]  # attempt 5 of 5: straight to delayed
    job = prt.store.get(job_id)
    assert job is not None and job.status is JobStatus.DELAYED


def test_past_the_deadline_fails_with_provider_timeout(prt: Runtime) -> None:
    job_id, _ = submit(prt, "veo_never")
    prt.store.update(job_id, lambda j: setattr(j, "deadline_at", time.time() - 1))
    assert advance(prt, job_id, 1).action == "finish"
    job = prt.store.get(job_id)
    assert job is not None and job.error_code is ErrorCode.PROVIDER_TIMEOUT


def test_canceled_job_is_not_polled(prt: Runtime, fake: FakeProvider) -> None:
    job_id, task = submit(prt, "veo_never")
    prt.store.update(job_id, lambda j: setattr(j, "status", JobStatus.CANCELED))
    assert advance(prt, job_id, 1).action == "stop"
    assert task not in fake.stats()["polls"]


def test_rate_limited_locally_reschedules_without_a_call(
    settings: Settings, fake: FakeProvider
) -> None:
    tight = build_runtime(settings.model_copy(update={
        "kie_base_url": fake.base_url, "rate_limit_per_second": 0.5, "rate_limit_burst": 1}))
    job_a, _ = submit(tight, "veo_never")
    job_b, task_b = submit(tight, "veo_never")
    assert advance(tight, job_a, 1).action == "poll"
    step = advance(tight, job_b, 1)
    assert step.action == "poll" and step.countdown > 1.0
    assert task_b not in fake.stats()["polls"]
    job = tight.store.get(job_b)
    assert job is not None and job.attempts == 0


def test_unreachable_provider_is_transient(settings: Settings) -> None:
    rt = build_runtime(replace_url(settings, "http://127.0.0.1:9"))
    job_id, _ = submit(rt, "veo_ok1")
    step = advance(rt, job_id, 1)
    job = rt.store.get(job_id)
    assert step.action == "poll"
    assert job is not None and (job.transient_errors, job.attempts) == (1, 1)


def replace_url(settings: Settings, url: str) -> Settings:
    return settings.model_copy(update={"kie_base_url": url})





def test_generate_job_submits_through_validating_then_polls(
    prt: Runtime, fake: FakeProvider
) -> None:
    req = GenerateRequest.model_validate(
        {"sessionId": "s", "model": "veo3_fast", "prompt": "a heron (ok1)"})
    job = generate_job_record(req, get_model("veo3_fast"), prt.settings, None)
    prt.store.create(job)

    step = advance(prt, job.job_id, 0)

    stored = prt.store.get(job.job_id)
    assert stored is not None and stored.provider_task_id is not None
    assert (step.action, step.token) == ("poll", 1)
    assert [status for _, status in stored.history] == ["queued", "validating", "running"]
    assert advance(prt, job.job_id, 0).action == "stop"  # a duplicate submit message
    assert fake.stats()["submits"] == 1
