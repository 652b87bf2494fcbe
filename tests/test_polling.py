"""One poll turn against the real fake provider over HTTP, without Celery in the way."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.conftest import with_kie
from videopoll import transitions
from videopoll.errors import (
    RateLimitedError,
    SubmitOutcomeUnknownError,
    TaskNotFoundError,
    TransientError,
)
from videopoll.fake_provider import FakeProvider
from videopoll.messages import ERROR_MESSAGES, user_message
from videopoll.models import (
    ErrorCode,
    GenerateRequest,
    GenerationSpec,
    JobStatus,
    PollVideoRequest,
    ProviderResponse,
)
from videopoll.polling import advance
from videopoll.providers import ModelInfo, get_model
from videopoll.providers.kie.common import KieConfig
from videopoll.providers.kie.veo import KieVeoProvider
from videopoll.runtime import Runtime, build_runtime
from videopoll.settings import Settings
from videopoll.submission import generate_job_record, poll_job_record
from videopoll.sweeper import sweep


@pytest.fixture
def prt(settings: Settings, fake: FakeProvider) -> Runtime:
    return build_runtime(with_kie(settings, base_url=fake.base_url))


def submit(rt: Runtime, scenario: str, attempt: int = 1) -> tuple[str, str]:
    task = f"{scenario}_{uuid.uuid4().hex[:8]}"
    req = PollVideoRequest.model_validate(
        {"sessionId": "s", "taskId": task, "model": "veo3", "attempt": attempt})
    job = poll_job_record(req, get_model("veo3"), rt.settings, None)
    rt.store.create(job)
    return job.job_id, task


def drive(rt: Runtime, job_id: str, turns: int = 50) -> list[str]:
    """Carry out polls from the first token, the way the task would, minus the countdowns."""
    return drive_from(rt, job_id, 1, turns)


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
    tight = build_runtime(with_kie(settings, base_url=fake.base_url).model_copy(update={
        "rate_limit_per_second": 0.5, "rate_limit_burst": 1}))
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
    return with_kie(settings, base_url=url)





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


class Scripted(KieVeoProvider):
    """Our own seam: a provider whose answers the test scripts, counting every call."""

    def __init__(self, submits: list[object] | None = None,
                 polls: list[object] | None = None) -> None:
        super().__init__(KieConfig(base_url="http://127.0.0.1:9"))
        self.submits = list(submits or [])
        self.polls = list(polls or [])
        self.submit_calls = 0
        self.fetch_calls = 0

    def submit(self, model: ModelInfo, spec: GenerationSpec, callback_url: str | None) -> str:
        self.submit_calls += 1
        answer = self.submits.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return str(answer)

    def fetch(self, task_id: str, variant: str | None = None) -> ProviderResponse:
        self.fetch_calls += 1
        answer = self.polls.pop(0) if len(self.polls) > 1 else self.polls[0]
        if isinstance(answer, Exception):
            raise answer
        assert isinstance(answer, dict)
        return ProviderResponse(http_status=200, body={"code": 200, "msg": "ok", "data": answer})


RUNNING = {"taskId": "t", "successFlag": 0}
TIMED_OUT = {"taskId": "t", "successFlag": 3, "errorCode": 500,
             "errorMessage": "Internal Error - Timeout"}


def generate(rt: Runtime, provider: Scripted) -> str:
    rt._providers["kie_veo"] = provider
    req = GenerateRequest.model_validate(
        {"sessionId": "s", "model": "veo3_fast", "prompt": "a heron"})
    job = generate_job_record(req, get_model("veo3_fast"), rt.settings, None)
    rt.store.create(job)
    return job.job_id


@pytest.mark.parametrize("outcome_unknown", [
    SubmitOutcomeUnknownError("read timeout"),
    SubmitOutcomeUnknownError("HTTP 502"),
    RuntimeError("a bug in the adapter"),
])
def test_a_submit_whose_outcome_is_unknown_is_never_resent(
    rt: Runtime, outcome_unknown: Exception
) -> None:
    provider = Scripted(submits=[outcome_unknown, "task_2"])
    job_id = generate(rt, provider)
    assert advance(rt, job_id, 0).action == "finish"
    job = rt.store.get(job_id)
    assert job is not None
    assert (job.status, job.error_code) == (JobStatus.FAILED, ErrorCode.SUBMIT_UNCONFIRMED)
    assert provider.submit_calls == 1


def test_a_crash_between_submit_and_write_is_not_resubmitted(rt: Runtime) -> None:
    provider = Scripted(submits=["task_2"])
    job_id = generate(rt, provider)
    claimed = rt.store.claim(job_id, 0)
    assert claimed is not None
    assert transitions.begin_submit(rt.store, job_id, claimed.poll_token) is not None
    # … the worker dies here, after sending. The sweeper re-enqueues the current token:
    later = time.time() + rt.settings.poll_lease_seconds + rt.settings.sweep_grace_seconds + 1
    [(_, step)] = list(sweep(rt, later))
    assert advance(rt, job_id, step.token).action == "finish"
    job = rt.store.get(job_id)
    assert job is not None and job.error_code is ErrorCode.SUBMIT_UNCONFIRMED
    assert provider.submit_calls == 0


@pytest.mark.parametrize("refused", [
    TransientError("ConnectionError: connection refused"),
    RateLimitedError("HTTP 429", retry_after=0.1),
    RateLimitedError("KIE 455 maintenance"),
])
def test_a_submit_provably_not_accepted_is_retried(rt: Runtime, refused: Exception) -> None:
    provider = Scripted(submits=[refused, "task_2"], polls=[RUNNING])
    job_id = generate(rt, provider)
    step = advance(rt, job_id, 0)
    assert step.action == "poll" and step.countdown > 0
    assert advance(rt, job_id, step.token).action == "poll"
    job = rt.store.get(job_id)
    assert job is not None and job.provider_task_id == "task_2"
    assert provider.submit_calls == 2


def test_the_providers_own_timeout_resubmits_a_generate_job_once(rt: Runtime) -> None:
    provider = Scripted(submits=["task_1", "task_2"], polls=[TIMED_OUT])
    job_id = generate(rt, provider)
    actions = drive_from(rt, job_id, 0)
    assert actions == ["poll", "poll", "poll", "finish"]  # submit, fail→resubmit, submit, fail
    job = rt.store.get(job_id)
    assert job is not None and job.error_code is ErrorCode.PROVIDER_TIMEOUT
    assert provider.submit_calls == 2


def test_a_task_failed_at_the_providers_concurrency_limit_is_resubmitted_later(
    rt: Runtime,
) -> None:
    at_capacity = {"taskId": "t", "successFlag": 3, "errorCode": 400,
                   "errorMessage": "Reached the limit for concurrent generations."}
    provider = Scripted(submits=["task_1", "task_2"], polls=[at_capacity, RUNNING])
    job_id = generate(rt, provider)
    submitted = advance(rt, job_id, 0)
    step = advance(rt, job_id, submitted.token)
    assert step.action == "poll" and step.countdown == rt.settings.countdown_for(1)
    assert advance(rt, job_id, step.token).action == "poll"  # the fresh submit
    job = rt.store.get(job_id)
    assert job is not None and job.provider_task_id == "task_2" and not job.status.terminal
    assert provider.submit_calls == 2


def test_a_canceled_jobs_late_provider_task_is_recorded(rt: Runtime) -> None:
    provider = Scripted(submits=["task_orphan"])
    job_id = generate(rt, provider)

    def cancel_during_submit(
        model: ModelInfo, spec: GenerationSpec, callback_url: str | None
    ) -> str:
        transitions.cancel(rt.store, job_id)
        return "task_orphan"

    provider.submit = cancel_during_submit  # type: ignore[method-assign]
    assert advance(rt, job_id, 0).action == "stop"
    assert rt.store.redis.get(f"videopoll:orphan:{job_id}") == "kie_veo:task_orphan"


def drive_from(rt: Runtime, job_id: str, token: int, turns: int = 20) -> list[str]:
    """Carry out turns from ``token`` on (0 is a generate job's submit turn)."""
    actions = []
    for _ in range(turns):
        step = advance(rt, job_id, token)
        actions.append(step.action)
        if step.action != "poll":
            break
        token = step.token
    return actions


def test_a_delayed_job_turned_away_by_the_limiter_waits_the_short_wait(
    settings: Settings,
) -> None:
    tight = build_runtime(settings.model_copy(update={
        "rate_limit_per_second": 0.5, "rate_limit_burst": 1, "delayed_interval_seconds": 300}))
    tight._providers["kie_veo"] = Scripted(polls=[RUNNING])
    job_id, _ = submit(tight, "veo_never", attempt=6)  # past max_attempts: delayed
    tight.limiter.take(tight.bucket("kie_veo", "status"))  # someone else took the only token
    step = advance(tight, job_id, 1)
    assert step.action == "poll"
    assert 0 < step.countdown < 10  # the limiter's wait, not DELAYED_INTERVAL_SECONDS


def test_a_job_starved_by_rate_limits_ends_provider_rate_limited(rt: Runtime) -> None:
    rt._providers["kie_veo"] = Scripted(polls=[RateLimitedError("HTTP 429", 0.1)])
    job_id, _ = submit(rt, "veo_never")
    step = advance(rt, job_id, 1)
    rt.store.update(job_id, lambda j: setattr(j, "deadline_at", time.time() - 1))
    assert advance(rt, job_id, step.token).action == "finish"
    job = rt.store.get(job_id)
    assert job is not None and job.error_code is ErrorCode.PROVIDER_RATE_LIMITED


def test_going_delayed_asks_for_one_notice(prt: Runtime) -> None:
    job_id, _ = submit(prt, "veo_never")
    steps = []
    token = 1
    for _ in range(8):
        step = advance(prt, job_id, token)
        steps.append(step)
        if step.action != "poll":
            break
        token = step.token
    assert [s.notify_delayed for s in steps] == [False] * 4 + [True]
    # the sweeper's later slow polls do not ask again
    job = prt.store.get(job_id)
    assert job is not None
    assert advance(prt, job_id, job.poll_token).notify_delayed is False


def test_a_task_the_provider_does_not_know_gets_a_grace_then_fails(rt: Runtime) -> None:
    rt._providers["kie_veo"] = Scripted(polls=[TaskNotFoundError("404 Task not found")])
    job_id, _ = submit(rt, "veo_never")
    step = advance(rt, job_id, 1)
    assert step.action == "poll"  # brand new: it may not exist yet
    rt.store.update(job_id, lambda j: setattr(j, "created_at", time.time() - 3600))
    assert advance(rt, job_id, step.token).action == "finish"
    job = rt.store.get(job_id)
    assert job is not None and job.error_code is ErrorCode.TASK_NOT_FOUND
    assert user_message(job.status, job.error_code) != ERROR_MESSAGES[ErrorCode.PROVIDER_TIMEOUT]


def test_successes_without_a_url_end_output_missing(rt: Runtime) -> None:
    no_url = {"taskId": "t", "successFlag": 1, "response": {"resultUrls": []}}
    provider = Scripted(polls=[no_url])
    rt._providers["kie_veo"] = provider
    job_id, _ = submit(rt, "veo_never")
    actions = drive_from(rt, job_id, 1)
    assert actions == ["poll"] * (rt.settings.max_missing_output_polls - 1) + ["finish"]
    job = rt.store.get(job_id)
    assert job is not None and job.error_code is ErrorCode.OUTPUT_MISSING
    assert provider.fetch_calls == rt.settings.max_missing_output_polls


@pytest.mark.parametrize(("retry_after", "attempts_before", "expected"), [
    (7.0, 0, 7.0),        # the header wins
    (0.0, 0, 0.1),        # never a zero countdown
    (None, 0, 0.05),      # no header: the normal interval…
    (None, 3, 0.05),
])
def test_retry_after_arithmetic(
    rt: Runtime, retry_after: float | None, attempts_before: int, expected: float
) -> None:
    rt._providers["kie_veo"] = Scripted(polls=[RateLimitedError("429", retry_after)])
    job_id, _ = submit(rt, "veo_never")
    rt.store.update(job_id, lambda j: setattr(j, "attempts", attempts_before))
    step = advance(rt, job_id, 1)
    assert step.action == "poll"
    assert step.countdown == pytest.approx(expected)
    job = rt.store.get(job_id)
    assert job is not None and job.attempts == attempts_before  # a 429 costs no attempt


def test_repeated_429s_without_a_header_back_off_up_to_eight_times(rt: Runtime) -> None:
    rt._providers["kie_veo"] = Scripted(polls=[RateLimitedError("429", None)])
    job_id, _ = submit(rt, "veo_never")
    countdowns = []
    token = 1
    for _ in range(6):
        step = advance(rt, job_id, token)
        countdowns.append(round(step.countdown, 3))
        token = step.token
    base = rt.settings.poll_interval_seconds
    assert countdowns == [round(base * f, 3) for f in (1, 2, 4, 8, 8, 8)]
