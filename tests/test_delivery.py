"""Delivery stages are safe to run again: one stored file, one notification, one record."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_store import make_job
from videopoll import delivery, notify
from videopoll.errors import DeliveryError
from videopoll.fake_provider import FakeProvider
from videopoll.messages import ERROR_MESSAGES
from videopoll.models import ErrorCode, JobRecord, JobStatus
from videopoll.notifiers import ConsoleNotifier
from videopoll.polling import fail
from videopoll.runtime import Runtime

SAMPLE = Path(delivery.__file__).parent / "fake_provider" / "sample.mp4"


@pytest.fixture
def out(rt: Runtime) -> io.StringIO:
    buffer = io.StringIO()
    rt.notifiers = [ConsoleNotifier(buffer)]
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
    notify.notify_user(rt, job_id)
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


def test_a_long_download_keeps_its_lease_and_is_not_run_twice(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch, out: io.StringIO
) -> None:
    monkeypatch.setattr(delivery, "STAGE_LEASE_SECONDS", 0.3)
    job_id = delivering(rt, "https://cdn.example/slow.mp4")
    others: list[str | None] = []

    def slow_download(*_args: object, **_kw: object) -> Iterator[bytes]:
        for _ in range(8):  # 1.2 s in all: four times the lease
            time.sleep(0.15)
            others.append(rt.store.begin_stage(job_id, "store", 5))  # a second worker tries
            yield b"x" * 1000

    monkeypatch.setattr(delivery, "stream", slow_download)
    assert delivery.store_output(rt, job_id) == "stored"
    assert others == [None] * 8  # the lease never lapsed while we worked
    job = rt.store.get(job_id)
    assert job is not None and job.delivery.size_bytes == 8000


def test_a_second_chain_stops_quietly_while_the_first_is_storing(rt: Runtime) -> None:
    job_id = delivering(rt, "https://cdn.example/v.mp4")
    assert rt.store.begin_stage(job_id, "store", 30) is not None  # another worker is at it
    assert delivery.store_output(rt, job_id) == "held"


def test_the_signed_provider_url_is_dropped_once_stored(
    rt: Runtime, fake: FakeProvider, out: io.StringIO
) -> None:
    job_id = delivering(rt, f"{fake.base_url}/files/veo_ok1_z.mp4?sig=secret")
    delivery.store_output(rt, job_id)
    job = rt.store.get(job_id)
    assert job is not None and job.output_url is None and job.delivery.storage_key


def test_the_storage_path_cannot_escape_its_root(rt: Runtime) -> None:
    with pytest.raises(ValueError, match="escapes"):
        rt.storage.put_stream("../../etc/owned.mp4", [b"x"])


def test_recording_a_finished_job_clears_its_outbox_entry(rt: Runtime, out: io.StringIO) -> None:
    rt.store.create(make_job(rt))
    fail(rt, "job_1", ErrorCode.MODERATION_REJECTED)
    assert rt.store.redis.zscore(rt.store.outbox_key, "job_1") is not None
    notify.notify_user(rt, "job_1")
    delivery.record_result(rt, "job_1")
    assert rt.store.redis.zscore(rt.store.outbox_key, "job_1") is None
    sent = json.loads(out.getvalue().splitlines()[0].removeprefix("NOTIFY "))
    assert sent["message"] == ERROR_MESSAGES[ErrorCode.MODERATION_REJECTED]
    assert rt.store.redis.xlen("videopoll:results") == 1


def test_a_worker_killed_while_recording_leaves_exactly_one_analytics_event(
    rt: Runtime, out: io.StringIO
) -> None:
    """The event and the stage's "done" are one step: no interleaving of a dead worker and its
    re-run can leave none or two (a kill -9 between an append and its mark used to)."""
    rt.store.create(make_job(rt))
    fail(rt, "job_1", ErrorCode.MODERATION_REJECTED)
    dead = rt.store.begin_stage("job_1", "record", 0.2)  # a worker SIGKILLed right here
    assert dead is not None
    delivery.record_result(rt, "job_1")  # the stage is still held: nothing yet
    assert rt.store.redis.xlen("videopoll:results") == 0
    time.sleep(0.3)  # its lease runs out
    delivery.record_result(rt, "job_1")
    delivery.record_result(rt, "job_1")
    assert rt.store.redis.xlen("videopoll:results") == 1
    # the dead worker's late step (had it only been frozen) appends nothing either
    assert not rt.store.finish_stage_with_event("job_1", "record", dead, "videopoll:results",
                                                {"jobId": "job_1"}, 100)
    assert rt.store.redis.xlen("videopoll:results") == 1


def test_the_delayed_notice_is_sent_once(rt: Runtime, out: io.StringIO) -> None:
    rt.store.create(make_job(rt))
    rt.store.update("job_1", lambda j: setattr(j, "status", JobStatus.DELAYED))
    notify.notify_delayed(rt, "job_1")
    notify.notify_delayed(rt, "job_1")
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0].removeprefix("NOTIFY "))["message"] == (
        "This is taking longer than usual. We are still checking.")


def test_one_analytics_event_with_real_metadata_cost_and_no_link(
    rt: Runtime, fake: FakeProvider, out: io.StringIO
) -> None:
    rt.settings = rt.settings.model_copy(update={"model_prices": {"veo3": 2.5}})
    job_id = delivering(rt, f"{fake.base_url}/files/veo_ok1_a.mp4?X-Amz-Signature=s3cr3t")
    run_all(rt, job_id)
    [(_, row)] = rt.store.redis.xrange("videopoll:results")
    assert row["sessionId"] == "s" and row["taskId"] == "t1" and row["model"] == "veo3"
    assert row["status"] == "succeeded" and row["cost"] == "2.5"
    meta = json.loads(row["metadata"])
    assert meta == {"duration": 1.5, "resolution": "160x90", "fileSize": SAMPLE.stat().st_size,
                    "codec": "h264", "fps": 12.0}
    assert row["videoUrl"].startswith("file://")  # the permanent location, not a link
    assert "s3cr3t" not in json.dumps(row)
    job = rt.store.get(job_id)
    assert job is not None and job.delivery.media is not None
    sent = json.loads(out.getvalue().splitlines()[0].removeprefix("NOTIFY "))
    assert sent["caption"].startswith("veo3 · 2s · 160x90 · ")


def test_a_channel_held_by_a_dead_worker_is_not_skipped(
    rt: Runtime, fake: FakeProvider, out: io.StringIO
) -> None:
    """The crashed sender's lease must run out and the channel be sent, not marked done."""
    job_id = delivering(rt, f"{fake.base_url}/files/veo_ok1_h.mp4")
    delivery.store_output(rt, job_id)
    assert rt.store.begin_stage(job_id, "notify:console", 0.3) is not None  # then it died
    assert notify.notify_user(rt, job_id) is False  # this chain stops, the job stays open
    assert out.getvalue() == ""
    assert rt.store.get(job_id).status is JobStatus.DELIVERING  # type: ignore[union-attr]
    time.sleep(0.4)
    assert notify.notify_user(rt, job_id) is True  # the re-delivery after the lease
    assert len(out.getvalue().splitlines()) == 1
