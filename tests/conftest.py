"""Shared fixtures: a private redis-server (never the machine's), settings, a runtime."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from videopoll.fake_provider import FakeProvider, start_in_thread
from videopoll.runtime import Runtime, build_runtime
from videopoll.settings import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server of our own on a free port; tests may flush it freely."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (make test installs it)")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProvider]:
    """The bundled fake KIE.ai server on a free loopback port."""
    server = start_in_thread()
    yield server
    server.stop()


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
        kie_base_url="http://127.0.0.1:9",
        kie_api_key="test-key",
        rate_limit_per_second=1000,
        rate_limit_burst=1000,
    )


@pytest.fixture
def rt(settings: Settings) -> Runtime:
    return build_runtime(settings)
