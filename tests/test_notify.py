"""A message that went out is written down, even across a Redis outage, and never sent again."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.e2e.test_resilience import RestartableRedis
from tests.test_store import make_job
from videopoll import notify
from videopoll.fake_telegram import FakeTelegram
from videopoll.models import JobRecord, JobStatus
from videopoll.notifiers import ConsoleNotifier, Notice, TelegramNotifier
from videopoll.runtime import Runtime, build_runtime
from videopoll.settings import Settings
from videopoll.transitions import progress_text


class OutagedRedis(RestartableRedis):
    """A redis-server that can be stopped now and started again a little later. Teardown
    cancels or waits for a pending start, so no server outlives its test, even a failed one."""

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.restarts: list[threading.Timer] = []

    def outage(self, down: float | None) -> None:
        """Stop now; start again after ``down`` seconds (``None``: stay down)."""
        self.stop()
        if down is not None:
            restart = threading.Timer(down, self.start)
            restart.daemon = True
            restart.start()
            self.restarts.append(restart)

    def close(self) -> None:
        for restart in self.restarts:
            restart.cancel()
            restart.join()
        self.stop()


class OutageAfterSend(ConsoleNotifier):
    """Sends, then stops the job store's Redis for ``down`` seconds (``None``: for good)."""

    def __init__(self, server: OutagedRedis, down: float | None) -> None:
        super().__init__(io.StringIO())
        self.server, self.down = server, down

    def send(self, job: JobRecord, notice: Notice) -> str:
        message_id = super().send(job, notice)
        self.server.outage(self.down)
        return message_id

    def sent(self) -> list[dict[str, object]]:
        assert isinstance(self.out, io.StringIO)
        return [json.loads(line.removeprefix("NOTIFY "))
                for line in self.out.getvalue().splitlines()]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[OutagedRedis]:
    own = OutagedRedis(tmp_path)
    own.start()
    yield own
    own.close()


def failed_job(settings: Settings, server: OutagedRedis) -> Runtime:
    rt = build_runtime(settings.model_copy(update={"redis_url": f"{server.url}/0"}))
    rt.store.create(make_job(rt))

    def fail(job: JobRecord) -> None:
        job.status = JobStatus.FAILED

    rt.store.update("job_1", fail)
    return rt


def test_a_redis_outage_after_the_send_does_not_send_it_again(
    settings: Settings, server: OutagedRedis
) -> None:
    rt = failed_job(settings, server)
    channel = OutageAfterSend(server, down=1.0)
    rt.notifiers = [channel]

    assert notify.notify_user(rt, "job_1") is True  # waited the outage out
    receipt = rt.store.channel_result("job_1", "notify:console")
    assert receipt is not None and receipt["status"] == "sent"
    assert rt.store.stage_done("job_1", "notify:console")

    channel.down = None  # a re-delivered chain finds the channel done
    assert notify.notify_user(rt, "job_1") is True
    assert [m["status"] for m in channel.sent()] == ["failed"]


def test_a_receipt_without_its_done_mark_is_not_sent_again(rt: Runtime) -> None:
    """The sender wrote its receipt and died before marking the channel done."""
    rt.store.create(make_job(rt))
    rt.store.update("job_1", lambda job: setattr(job, "status", JobStatus.FAILED))
    out = io.StringIO()
    rt.notifiers = [ConsoleNotifier(out)]
    assert rt.store.begin_stage("job_1", "notify:console", 0.2) is not None
    rt.store.record_channel("job_1", "notify:console", {"status": "sent", "message_id": "m1"})
    time.sleep(0.3)  # its lease runs out

    assert notify.notify_user(rt, "job_1") is True
    assert out.getvalue() == ""
    assert rt.store.stage_done("job_1", "notify:console")


def test_an_outage_longer_than_the_patience_is_an_error_in_bounded_time(
    settings: Settings, server: OutagedRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(notify, "RECEIPT_PATIENCE_SECONDS", 0.5)
    rt = failed_job(settings, server)
    rt.notifiers = [OutageAfterSend(server, down=None)]
    began = time.monotonic()
    with pytest.raises(redis.ConnectionError):
        notify.notify_user(rt, "job_1")
    assert time.monotonic() - began < 5


class ProgressOutage(TelegramNotifier):
    """Starts the progress message, then stops the job store's Redis for a second."""

    def __init__(self, server: OutagedRedis, bot_api: FakeTelegram) -> None:
        super().__init__("123456:TEST-token", bot_api.base_url, 50 * 1024 * 1024)
        self.server = server

    def start_progress(self, chat_id: str | int, text: str) -> int:
        message_id = super().start_progress(chat_id, text)
        self.server.outage(1.0)
        return message_id


def test_a_redis_outage_after_the_first_progress_message_starts_no_second_one(
    settings: Settings, server: OutagedRedis, bot_api: FakeTelegram
) -> None:
    rt = build_runtime(settings.model_copy(update={"redis_url": f"{server.url}/0"}))
    rt.notifiers = [ProgressOutage(server, bot_api)]
    job = make_job(rt)
    job.chat_id, job.progress_messages, job.max_attempts = 31, True, 15
    rt.store.create(job)
    for attempt in (1, 2):
        rt.store.update(job.job_id, lambda j, a=attempt: setattr(j, "attempts", a))
        current = rt.store.get(job.job_id)
        assert current is not None
        notify.update_progress(rt, job.job_id, progress_text(current))
    assert [c["text"] for c in bot_api.calls("sendMessage")] == ["Generating… 1/15"]
    assert [c["text"] for c in bot_api.calls("editMessageText")] == ["Generating… 2/15"]
