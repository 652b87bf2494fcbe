"""Shared fixtures: a private redis-server (never the machine's), settings, a runtime."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests
import responses

from tests.listeners import Listener
from videopoll.fake_provider import FakeProvider, start_in_thread
from videopoll.fake_telegram import FakeTelegram
from videopoll.fake_telegram import start_in_thread as start_telegram
from videopoll.local_redis import free_port, local_redis
from videopoll.runtime import Runtime, build_runtime
from videopoll.settings import Settings

TESTS_DIR = Path(__file__).parent
E2E_DIR = TESTS_DIR / "e2e"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every whole-stack test ``e2e`` (a module-level ``pytestmark`` in a conftest marks
    nothing), so ``-m e2e`` and ``-m "not e2e"`` select what they say.

    ``make test`` runs on two xdist workers with ``--dist loadgroup``: each file is one group
    (its module-scoped stacks start once), except tests that name a group of their own (the
    CPU-heavy fault runs, which must not run at the same time as each other).
    """
    for item in items:
        if E2E_DIR in item.path.parents:
            item.add_marker(pytest.mark.e2e)
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(str(item.path.relative_to(TESTS_DIR))))


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server of our own on a free port; tests may flush it freely."""
    with local_redis(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    """``responses`` for one adapter's unit tests: every registered answer must be asked for."""
    with responses.RequestsMock() as rsps:
        yield rsps


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProvider]:
    """The bundled fake KIE.ai server on a free loopback port."""
    server = start_in_thread()
    yield server
    server.stop()


class MotoServer:
    """moto's standalone S3 server as a real process on a loopback port (stoppable)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> MotoServer:
        binary = Path(sys.executable).parent / "moto_server"
        self.proc = subprocess.Popen([str(binary), "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                requests.get(self.url, timeout=1)
                return self
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError("moto_server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def alive(pid: int) -> bool:
    """Whether a process we started is still running."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def aws_test_credentials() -> dict[str, str]:
    return {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="session")
def s3_server() -> Iterator[MotoServer]:
    os.environ.update(aws_test_credentials())  # boto3 reads them; moto accepts any
    server = MotoServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session", autouse=True)
def private_broker(redis_server: str) -> None:
    """Anything this test process publishes reaches our own Redis, never the machine's :6379."""
    from videopoll.celery_app import app as celery_app

    celery_app.conf.broker_url = f"{redis_server}/14"


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """Database 0 of the private server, emptied for each test."""
    url = f"{redis_server}/0"
    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture
def settings(redis_url: str, tmp_path: Path) -> Settings:
    return Settings(
        redis_url=redis_url,
        poll_interval_seconds=0.05,
        max_attempts=5,
        delayed_interval_seconds=0.2,
        job_deadline_seconds=30,
        sweep_grace_seconds=0.5,
        poll_lease_seconds=2,
        storage_url=(tmp_path / "videos").as_uri(),
        allow_private_urls=True,
        providers={"kie": {"base_url": "http://127.0.0.1:9", "api_key": "test-key"}},
        rate_limit_per_second=1000,
        rate_limit_burst=1000,
    )


def with_kie(settings: Settings, **fields: object) -> Settings:
    """``settings`` with KIE's provider settings changed (``base_url``, ``webhook_hmac_key``…)."""
    providers = {**settings.providers, "kie": {**settings.providers.get("kie", {}), **fields}}
    return settings.model_copy(update={"providers": providers})


@pytest.fixture
def rt(settings: Settings) -> Runtime:
    return build_runtime(settings)


@pytest.fixture(scope="session")
def fake_bot_api() -> Iterator[FakeTelegram]:
    """The bundled fake Telegram Bot API on a free loopback port, one per test session."""
    server = start_telegram()
    yield server
    server.stop()


@pytest.fixture
def bot_api(fake_bot_api: FakeTelegram) -> FakeTelegram:
    """The fake Bot API with no calls recorded and no failures scripted."""
    fake_bot_api.reset()
    return fake_bot_api


@pytest.fixture(scope="session")
def callback_server() -> Iterator[Listener]:
    """A loopback HTTP listener standing in for a caller's callback URL (n8n, Slack…)."""
    running = Listener()
    yield running
    running.stop()


@pytest.fixture
def listener(callback_server: Listener) -> Listener:
    """The callback listener with nothing received and nothing scripted."""
    callback_server.reset()
    return callback_server
