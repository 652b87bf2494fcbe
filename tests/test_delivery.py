"""Delivery stages are safe to run again: one stored file, one notification, one record."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from tests.test_store import make_job
from videopoll import delivery
from videopoll.errors import DeliveryError
from videopoll.fake_provider import FakeProvider
from videopoll.models import JobRecord, JobStatus
from videopoll.notify import ConsoleNotifier
from videopoll.runtime import Runtime

SAMPLE = Path(delivery.__file__).parent / "fake_provider" / "sample.mp4"


@pytest.fixture
def out(rt: Runtime) -> io.StringIO:
    buffer = io.StringIO()
    rt.notifier = ConsoleNotifier(buffer)
    return buffer


def delivering(rt: Runtime, url: str) -> str:
    rt.store.create(make_job(rt))

    def ready(j: JobRecord) -> None:
        j.status = JobStatus.DELIVERING
        j.output_url = url

    rt.store.update("job_1", ready)
    return "job_1"


def run_all(rt: Runtime, job_id: str) -> None:
    delivery.store_output(rt, job_id)
    delivery.notify_user(rt, job_id)
    delivery.record_result(rt, job_id)


def test_full_delivery_then_a_rerun_changes_nothing(
    rt: Runtime, fake: FakeProvider, out: io.StringIO
) -> None:
    job_id = delivering(rt, f"{fake.base_url}/files/veo_ok1_x.mp4")
    run_all(rt, job_id)
    run_all(rt, job_id)  # a redelivered chain

    job = rt.store.get(job_id)
    assert job is not None and job.status is JobStatus.SUCCEEDED
    assert job.delivery.size_bytes == SAMPLE.stat().st_size
    assert Path(job.delivery.storage_url.removeprefix("file://")).read_bytes() == (
        SAMPLE.read_bytes())
    assert fake.stats()["downloads"]["veo_ok1_x"] == 1
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    sent = json.loads(lines[0].removeprefix("NOTIFY "))
    assert (sent["status"], sent["message"]) == ("succeeded", "Your video is ready.")
    assert rt.store.redis.xlen("videopoll:results") == 1


def test_upload_done_before_a_crash_is_reused_not_repeated(
    rt: Runtime, fake: FakeProvider, out: io.StringIO
) -> None:
    job_id = delivering(rt, f"{fake.base_url}/files/veo_ok1_y.mp4")
    delivery.store_output(rt, job_id)
    # the crash: the record lost its storage key but the object exists
    rt.store.update(job_id, lambda j: setattr(j.delivery, "storage_key", None))
    rt.store.redis.delete(rt.store.stage_key(job_id, "store"))
    delivery.store_output(rt, job_id)
    assert fake.stats()["downloads"]["veo_ok1_y"] == 1


def test_download_failure_leaves_the_stage_retryable(rt: Runtime, out: io.StringIO) -> None:
    job_id = delivering(rt, "http://127.0.0.1:9/nothing.mp4")
    with pytest.raises(DeliveryError):
        delivery.store_output(rt, job_id)
    assert rt.store.begin_stage(job_id, "store", 5)  # not left held
    assert out.getvalue() == ""
