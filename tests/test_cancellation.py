"""A canceled job's task is stopped at the provider, where the provider can, at most once."""

from __future__ import annotations

import pytest

from tests.test_store import make_job
from videopoll import transitions
from videopoll.cancellation import cancel_at_provider
from videopoll.errors import PermanentError, TransientError
from videopoll.models import ErrorCode
from videopoll.providers.kie.common import KieConfig
from videopoll.providers.kie.veo import KieVeoProvider
from videopoll.runtime import Runtime


class Cancellable(KieVeoProvider):
    """Our own seam: a provider whose cancel answers are scripted."""

    can_cancel = True

    def __init__(self, answers: list[object]) -> None:
        super().__init__(KieConfig(base_url="http://127.0.0.1:9"))
        self.answers = answers
        self.asked: list[str] = []

    def cancel(self, task_id: str) -> bool:
        self.asked.append(task_id)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return bool(answer)


def canceled_job(rt: Runtime, provider: Cancellable) -> str:
    rt._providers["kie_veo"] = provider
    job = make_job(rt)
    rt.store.create(job)
    assert transitions.cancel(rt.store, job.job_id).applied
    return job.job_id


def test_the_provider_is_asked_to_stop_the_task(rt: Runtime) -> None:
    provider = Cancellable([True])
    job_id = canceled_job(rt, provider)
    assert cancel_at_provider(rt, job_id) == "canceled"
    assert provider.asked == ["t1"]
    assert rt.store.channel_results(job_id)["provider_cancel"] == {"status": "canceled"}


def test_a_refusal_is_recorded_and_a_fault_propagates_for_a_retry(rt: Runtime) -> None:
    provider = Cancellable([TransientError("down"),
                            PermanentError(ErrorCode.VALIDATION_FAILED, "already done")])
    job_id = canceled_job(rt, provider)
    with pytest.raises(TransientError):
        cancel_at_provider(rt, job_id)
    assert cancel_at_provider(rt, job_id) == "refused"
    assert rt.store.channel_results(job_id)["provider_cancel"] == {"status": "refused"}


def test_jobs_that_are_not_canceled_are_never_cancelled_remotely(rt: Runtime) -> None:
    provider = Cancellable([True])
    rt._providers["kie_veo"] = provider
    job = make_job(rt)
    rt.store.create(job)
    assert cancel_at_provider(rt, job.job_id) == "not_applicable"
    assert cancel_at_provider(rt, "job_missing") == "not_applicable"
    assert provider.asked == []
