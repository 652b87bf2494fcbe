"""Outages and restarts under the real processes: Redis restarts, two beats, backlogs, SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from celery import Celery

from tests.e2e.conftest import FAST
from tests.e2e.reliability import record
from tests.e2e.stack import BIN, REPO, Stack
from videopoll.fake_provider import FakeProvider
from videopoll.local_redis import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


class RestartableRedis:
    """A redis-server of the test's own that it stops and starts again on the same port.

    The append-only file is on, as in production, so the job records and the broker's queues
    outlive the restart; what a restart breaks is every client's connection.
    """

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> RestartableRedis:
        log = open(self.workdir / "redis.log", "ab")  # noqa: SIM115 - lives with the process
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--dir", str(self.workdir)], stdout=log, stderr=log)
        Stack.wait_until(self._answers, 10, "redis-server to answer")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: Redis flushes the append-only file and exits
            self.proc.wait(timeout=10)

    def _answers(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_timeout=1).ping())
        except redis.RedisError:
            return False


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RestartableRedis]:
    server = RestartableRedis(tmp_path).start()
    yield server
    server.stop()


def stack_env(
    redis_url: str, fake: FakeProvider, workdir: Path, **overrides: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "COV"))}
    env.update(FAST)
    env.update({"REDIS_URL": redis_url, "KIE_BASE_URL": fake.base_url,
                "STORAGE_URL": (workdir / "videos").as_uri(), "PYTHONPATH": str(REPO)})
    env.update(overrides)
    return env


def submit(stack: Stack, scenario: str) -> str:
    body = {"sessionId": "u", "taskId": f"veo_{scenario}_{uuid.uuid4().hex[:8]}", "model": "veo3"}
    resp = stack.post("/webhook/poll-video", body)
    assert resp.status_code == 202, resp.text
    job_id: str = resp.json()["jobId"]
    return job_id


def total_polls(fake: FakeProvider) -> int:
    return sum(fake.stats()["polls"].values())


def test_worker_beat_and_api_ride_out_a_redis_restart(
    own_redis: RestartableRedis, fake: FakeProvider, tmp_path: Path
) -> None:
    """Restart Redis under jobs in flight: no process exits, every job still finishes."""
    stack = Stack(stack_env(f"{own_redis.url}/1", fake, tmp_path, POLL_INTERVAL_SECONDS="1"),
                  tmp_path, free_port()).start()
    try:
        jobs = [submit(stack, "ok4") for _ in range(6)]
        # every job has been polled once: the worker now holds their countdown messages
        stack.wait_until(lambda: total_polls(fake) >= 6, 20, "the first polls")
        sweeps_before = stack.ran("videopoll.sweep")

        own_redis.stop()
        time.sleep(2)
        own_redis.start()
        back = time.monotonic()
        polls_at_restart = total_polls(fake)
        worker = stack.procs["worker1"]
        stack.wait_until(lambda: total_polls(fake) > polls_at_restart or worker.poll() is not None,
                         60, "polling to resume")
        resumed = time.monotonic() - back
        assert worker.poll() is None, stack.log("worker1")[-1500:]

        views = [stack.wait_terminal(job_id, 90) for job_id in jobs]
        assert [v["status"] for v in views] == ["succeeded"] * len(jobs), views
        exited = {name: p.returncode for name, p in stack.procs.items() if p.poll() is not None}
        assert exited == {}, (exited, stack.log("worker1")[-3000:])
        assert "Unrecoverable error" not in stack.log("worker1")
        stack.wait_until(lambda: stack.ran("videopoll.sweep") > sweeps_before + 2, 30,
                         "beat's sweeps after the restart")
        stack.wait_until(stack._healthy, 30, "the API healthy again")
        after = submit(stack, "ok1")
        assert stack.wait_terminal(after, 60)["status"] == "succeeded"
        print(f"\npolling resumed {resumed:.1f}s after Redis came back; all processes alive")
    finally:
        stack.stop()


def test_two_beats_fire_the_sweep_once_per_interval_and_a_standby_takes_over(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack(SWEEP_INTERVAL_SECONDS="1")
    stack.start_beat("beat2")
    stack.wait_until(lambda: stack.ran("videopoll.sweep") >= 2, 30, "sweeps")
    time.sleep(2)  # both beats are up and past their first tick

    start = stack.ran("videopoll.sweep")
    time.sleep(8)
    fired = stack.ran("videopoll.sweep") - start

    assert 4 <= fired <= 11, f"{fired} sweeps in 8 intervals with two beats"  # 16 if both fire

    leader = "beat" if "leading" in stack.log("beat") else "beat2"
    stack.stop_process(leader, signal.SIGKILL)
    before = stack.ran("videopoll.sweep")
    stack.wait_until(lambda: stack.ran("videopoll.sweep") >= before + 3, 40,
                     "the standby beat to take over")


def procfile_command(name: str) -> str:
    for line in (REPO / "Procfile").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {name} line in the Procfile")


def test_procfile_beat_runs_on_a_fresh_checkout(
    make_stack: Callable[..., Stack], tmp_path: Path
) -> None:
    """No ``var/`` and no STATE_DIR (a fresh clone): beat from the Procfile still sweeps."""
    stack = make_stack()
    stack.stop_process("beat")
    env = {k: v for k, v in stack.env.items() if k != "STATE_DIR"}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    checkout = tmp_path / "fresh"
    checkout.mkdir()
    log = open(tmp_path / "beat.log", "ab")  # noqa: SIM115 - closed below
    beat = subprocess.Popen(["/bin/sh", "-c", f"exec {procfile_command('beat')}"], cwd=checkout,
                            env=env, stdout=log, stderr=log, start_new_session=True)
    try:
        before = stack.ran("videopoll.sweep")
        stack.wait_until(lambda: stack.ran("videopoll.sweep") >= before + 2, 30,
                         "sweeps from the Procfile's beat")
        assert beat.poll() is None
    finally:
        os.killpg(beat.pid, signal.SIGTERM)
        beat.wait(timeout=15)
        log.close()
    assert not (checkout / "var").exists() or list((checkout / "var").iterdir()) == []


def test_a_sweep_runs_while_a_backlog_of_polls_is_queued(make_stack: Callable[..., Stack]) -> None:
    """Recovery matters most under a backlog: a sweep must not wait behind (and expire in) it."""
    stack = make_stack(SWEEP_INTERVAL_SECONDS="0.5")
    stack.stop_process("worker1")
    client = Celery(broker=stack.env["REDIS_URL"])
    with client.producer_or_acquire() as producer:
        for n in range(6000):  # stale polls for jobs that do not exist: each is dropped
            client.send_task("videopoll.poll_job", args=[f"job_backlog{n}", 1],
                             queue="videopoll", producer=producer)
    queue = redis.Redis.from_url(stack.env["REDIS_URL"])
    before = stack.ran("videopoll.sweep")
    stack.start_worker()
    queued_at_sweep: list[int] = []

    def swept() -> bool:
        if stack.ran("videopoll.sweep") == before:
            return False
        queued_at_sweep.append(int(queue.llen("videopoll")))  # type: ignore[arg-type]
        return True

    stack.wait_until(swept, 60, "a sweep")

    print(f"\nfirst sweep ran with {queued_at_sweep[0]} of 6000 polls still queued")
    assert queued_at_sweep[0] > 3000


def test_sigterm_hands_countdown_messages_back_promptly(
    broker_stack: Callable[..., Stack], fake: FakeProvider, request: pytest.FixtureRequest
) -> None:
    """A stopped worker's waiting polls go back to the queue, not to the visibility timeout
    (on Redis by soft shutdown; RabbitMQ requeues what a closed channel held)."""
    broker = request.node.callspec.params["broker_stack"]
    stack = broker_stack(POLL_SCHEDULE="0.1,30", SWEEP_GRACE_SECONDS="300")
    fake.reset()
    jobs = [submit(stack, "never") for _ in range(5)]
    stack.wait_until(lambda: total_polls(fake) >= 5, 20, "first polls")
    stack.wait_until(lambda: stack.received("videopoll.poll_job") >= 10, 20,
                     "the second polls (30 s countdowns) held by the worker")

    started = time.monotonic()
    assert stack.stop_process("worker1", signal.SIGTERM, timeout=40) == 0
    stopped_in = time.monotonic() - started
    stack.start_worker()

    stack.wait_until(lambda: stack.log("worker2").count("videopoll.poll_job[") >= 5, 15,
                     "the second worker to receive the held countdown messages")
    handed_over = time.monotonic() - started
    print(f"\nworker stopped {stopped_in:.1f}s after SIGTERM; its 5 countdown polls went to "
          "the next worker")
    assert len(jobs) == 5
    record(f"SIGTERM to a worker holding countdowns [{broker}]",
           "5 jobs whose next poll is 30 s away (held unacked by the worker); SIGTERM, then a "
           "new worker", {"jobs lost": 0, "worker exit (s)": round(stopped_in, 1),
                          "held polls on the new worker (s)": round(handed_over, 1)})
