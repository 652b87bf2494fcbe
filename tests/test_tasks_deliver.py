"""The delivery tasks' decisions when a stage keeps failing: bounded, then one clear ending.

The task bodies run directly (``Task.run`` with a pushed request), not in eager mode; the
only seams replaced are our own: the runtime, the notifier and the chain publisher.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
from celery.exceptions import Ignore

from tests.test_delivery import delivering
from videopoll import delivery, notify, transitions
from videopoll.fake_provider import FakeProvider
from videopoll.models import ErrorCode, JobRecord, JobStatus
from videopoll.notifiers import ConsoleNotifier, Notice, Notifier
from videopoll.runtime import Runtime
from videopoll.tasks import deliver


class BrokenNotifier(Notifier):
    name = "broken"

    def __init__(self) -> None:
        self.calls = 0

    def send(self, job: JobRecord, notice: Notice) -> str:
        self.calls += 1
        raise ConnectionError("notifier down")


@pytest.fixture
def finished(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    calls: list[str] = []
    monkeypatch.setattr(deliver, "get_runtime", lambda: rt)
    monkeypatch.setattr(deliver, "finish", calls.append)
    yield calls


def run_task(task: object, job_id: str, retries: int) -> None:
    task.push_request(retries=retries)  # type: ignore[attr-defined]
    try:
        task.run(job_id)  # type: ignore[attr-defined]
    finally:
        task.pop_request()  # type: ignore[attr-defined]


def test_a_notifier_that_keeps_failing_retries_then_ends_delivery_failed_once(
    rt: Runtime, fake: FakeProvider, finished: list[str]
) -> None:
    job_id = delivering(rt, f"{fake.base_url}/files/veo_ok1_n.mp4")
    delivery.store_output(rt, job_id)
    broken = BrokenNotifier()
    rt.notifiers = [broken]
    with pytest.raises(Ignore):
        run_task(deliver.notify_user, job_id, retries=deliver.NOTIFY_MAX_RETRIES)

    job = rt.store.get(job_id)
    assert job is not None
    assert (job.status, job.error_code) == (JobStatus.FAILED, ErrorCode.DELIVERY_FAILED)
    assert finished == [job_id]  # one failure chain: one failure message attempt
    assert broken.calls == 1
    # the failure chain's own notify gives up too, but lets the chain record the job
    run_task(deliver.notify_user, job_id, retries=deliver.NOTIFY_MAX_RETRIES)
    assert finished == [job_id]


def test_a_result_url_that_is_gone_ends_output_missing(
    rt: Runtime, fake: FakeProvider, finished: list[str]
) -> None:
    job_id = delivering(rt, f"{fake.base_url}/files/veo_gone_x.mp4")
    with pytest.raises(Ignore):
        run_task(deliver.fetch_and_store, job_id, retries=0)
    job = rt.store.get(job_id)
    assert job is not None
    assert (job.status, job.error_code) == (JobStatus.FAILED, ErrorCode.OUTPUT_MISSING)
    assert finished == [job_id]


def test_cancel_during_delivery_stops_it_and_tells_the_user_once(
    rt: Runtime, fake: FakeProvider, finished: list[str]
) -> None:
    out = io.StringIO()
    rt.notifiers = [ConsoleNotifier(out)]
    job_id = delivering(rt, f"{fake.base_url}/files/veo_ok1_c.mp4")
    assert transitions.cancel(rt.store, job_id).applied
    with pytest.raises(Ignore):  # the delivery chain stops before downloading anything
        run_task(deliver.fetch_and_store, job_id, retries=0)
    assert "veo_ok1_c" not in fake.stats()["downloads"]
    for _ in range(2):  # the cancel's chain, and a re-run of it
        notify.notify_user(rt, job_id)
        delivery.record_result(rt, job_id)
    lines = out.getvalue().splitlines()
    assert [json.loads(ln.removeprefix("NOTIFY "))["status"] for ln in lines] == ["canceled"]
    assert rt.store.redis.xlen("videopoll:results") == 1
