"""Whole-stack fixtures: the fake provider, and the API + worker + beat as subprocesses."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.brokers import BROKERS, RabbitVhosts, rabbitmq_available
from tests.e2e.stack import Stack
from videopoll.fake_provider import FakeProvider, provider_env
from videopoll.local_redis import free_port

FAST = {
    "POLL_INTERVAL_SECONDS": "0.2",
    "MAX_ATTEMPTS": "15",
    "DELAYED_INTERVAL_SECONDS": "0.5",
    "JOB_DEADLINE_SECONDS": "60",
    "SWEEP_INTERVAL_SECONDS": "0.5",
    "SWEEP_GRACE_SECONDS": "1.5",
    "POLL_LEASE_SECONDS": "5",
    "DELIVERY_LEASE_SECONDS": "5",
    "RATE_LIMIT_PER_SECOND": "200",
    "RATE_LIMIT_BURST": "200",
    "ALLOW_PRIVATE_URLS": "true",
    "KIE_API_KEY": "e2e-key",
    "PROVIDER_TIMEOUT_SECONDS": "3",
}


@pytest.fixture(scope="module")
def make_stack(
    redis_server: str, fake: FakeProvider, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., Stack]]:
    """Start stacks with extra settings; each gets its own Redis database and folder."""
    stacks: list[Stack] = []

    def start(api_port: int | None = None, **overrides: str) -> Stack:
        db = len(stacks) % 15 + 1
        workdir = tmp_path_factory.mktemp("stack")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "COV"))}
        env.update(FAST)
        env.update(provider_env(fake.provider_settings()))  # every family → the fake
        env.update({
            "REDIS_URL": f"{redis_server}/{db}",
            "KIE_BASE_URL": fake.base_url,
            "STORAGE_URL": (workdir / "videos").as_uri(),
            "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        })
        env.update(overrides)
        import redis

        redis.Redis.from_url(env["REDIS_URL"]).flushdb()
        stack = Stack(env, workdir, api_port or free_port())
        stacks.append(stack)
        return stack.start()

    yield start
    for stack in stacks:
        stack.stop()


@pytest.fixture(scope="module")
def stack(make_stack: Callable[..., Stack]) -> Stack:
    return make_stack()


@pytest.fixture(scope="module")
def rabbit() -> Iterator[RabbitVhosts]:
    """Private vhosts on the machine's RabbitMQ, deleted when the module is done."""
    if not rabbitmq_available():
        pytest.skip("RabbitMQ is not running on 127.0.0.1:5672 (rabbitmqctl)")
    vhosts = RabbitVhosts()
    yield vhosts
    vhosts.delete_all()


@pytest.fixture(scope="module", params=BROKERS)
def broker_stack(
    request: pytest.FixtureRequest, make_stack: Callable[..., Stack]
) -> Iterator[Callable[..., Stack]]:
    """``make_stack`` on each broker in turn (the job store is Redis either way); the stacks
    of one broker are stopped before the next broker's start."""
    started: list[Stack] = []

    def start(**overrides: str) -> Stack:
        if request.param == "amqp":
            overrides = {"BROKER_URL": request.getfixturevalue("rabbit").new_url(), **overrides}
        started.append(make_stack(**overrides))
        return started[-1]

    yield start
    for stack in started:
        stack.stop()
