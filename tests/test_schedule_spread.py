"""A burst of jobs does not stay a burst: polls spread out, and the cadence keeps its mean."""

from __future__ import annotations

import statistics

from videopoll.fake_provider import FakeProvider
from videopoll.models import PollVideoRequest
from videopoll.polling import advance
from videopoll.providers import get_model
from videopoll.providers.kie.common import KieConfig
from videopoll.providers.kie.veo import KieVeoProvider
from videopoll.runtime import Runtime
from videopoll.settings import Settings
from videopoll.submission import poll_job_record


def new_job(rt: Runtime, settings: Settings, i: int) -> tuple[str, float]:
    """A stored poll job on a task the fake keeps generating; (job id, its first wait)."""
    req = PollVideoRequest.model_validate(
        {"sessionId": "s", "taskId": f"veo_never_{i}", "model": "veo3"})
    job = poll_job_record(req, get_model("veo3"), settings, None)
    rt.store.create(job)
    assert job.next_poll_at is not None
    return job.job_id, job.next_poll_at - job.created_at


def test_first_polls_of_a_burst_spread_over_an_interval(rt: Runtime, settings: Settings) -> None:
    minute = settings.model_copy(update={"poll_interval_seconds": 60.0})
    waits = [new_job(rt, minute, i)[1] for i in range(400)]
    assert 30.0 <= min(waits) < 36.0 and 84.0 < max(waits) <= 90.0
    assert 55.0 < statistics.mean(waits) < 65.0


def test_later_polls_wander_a_little_around_the_interval(
    rt: Runtime, settings: Settings, fake: FakeProvider
) -> None:
    rt._providers["kie_veo"] = KieVeoProvider(KieConfig(base_url=fake.base_url))
    interval = settings.poll_interval_seconds
    countdowns = []
    for i in range(40):
        job_id, _ = new_job(rt, settings, i)
        step = advance(rt, job_id, 1)
        assert step.action == "poll"
        countdowns.append(step.countdown)
    assert len(set(countdowns)) > 1
    assert all(0.89 * interval <= c <= 1.11 * interval for c in countdowns)
