"""The shared token bucket: a burst passes, then callers are told how long to wait."""

from __future__ import annotations

import time

import pytest
import redis

from videopoll.ratelimit import Limit, RateLimiter
from videopoll.runtime import Runtime, build_runtime
from videopoll.settings import Settings


def test_burst_then_wait(redis_url: str) -> None:
    limiter = RateLimiter(redis.Redis.from_url(redis_url), jitter=0.0)
    limit = Limit(rate=2, burst=3)
    waits = [limiter.acquire("kie", limit) for _ in range(5)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert 0.0 < waits[3] <= 0.5
    assert limiter.acquire("other-provider", limit) == 0.0  # buckets are per account


def test_bucket_is_shared_between_clients(redis_url: str) -> None:
    a = RateLimiter(redis.Redis.from_url(redis_url))
    b = RateLimiter(redis.Redis.from_url(redis_url))
    limit = Limit(rate=1, burst=2)
    assert (a.acquire("kie", limit), b.acquire("kie", limit)) == (0.0, 0.0)
    assert a.acquire("kie", limit) > 0 and b.acquire("kie", limit) > 0


def test_a_worker_whose_clock_runs_ahead_cannot_refill_the_bucket(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    limiter = RateLimiter(redis.Redis.from_url(redis_url))
    limit = Limit(rate=1, burst=2)
    assert [limiter.acquire("kie", limit) for _ in range(2)] == [0.0, 0.0]
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 3600)  # this worker's clock is an hour off
    assert limiter.acquire("kie", limit) > 0


def test_denied_callers_are_spread_by_jitter(redis_url: str) -> None:
    limiter = RateLimiter(redis.Redis.from_url(redis_url), jitter=0.5)
    limit = Limit(rate=1, burst=1)
    limiter.acquire("kie", limit)
    waits = {round(limiter.acquire("kie", limit), 3) for _ in range(20)}
    assert len(waits) > 5  # not one herd returning at the same instant


def test_kie_families_share_one_account_per_kind(settings: Settings) -> None:
    rt: Runtime = build_runtime(settings.model_copy(update={
        "rate_limit_per_second": 0.01, "rate_limit_burst": 1,
        "submit_rate_limit_per_second": 0.01, "submit_rate_limit_burst": 1}))
    assert rt.limiter.take(rt.bucket("kie_veo", "status")) == 0.0
    # Veo used the account's status token
    assert rt.limiter.take(rt.bucket("kie_market", "status")) > 0
    # submits have a bucket of their own
    assert rt.limiter.take(rt.bucket("kie_market", "submit")) == 0.0
    assert rt.limiter.take(rt.bucket("kie_veo", "submit")) > 0


def test_documented_kie_limits_apply_without_configuration(settings: Settings) -> None:
    """providers.md §1.9: at most 10 status queries in any second, and 20 submits in any
    10 s, whatever the buckets held: a full bucket plus what refills in the window."""
    rt = build_runtime(settings.model_copy(update={
        "rate_limit_per_second": None, "rate_limit_burst": None}))
    status, submit = rt.bucket("kie_veo", "status"), rt.bucket("kie_veo", "submit")
    began, passed = time.monotonic(), 0
    while time.monotonic() - began < 1.0:  # a second of eager callers
        passed += rt.limiter.take(status) == 0.0
    assert 2 <= passed <= 10  # a stalled caller may see fewer, never more
    assert submit.limit.burst + 10 * submit.limit.rate <= 20
