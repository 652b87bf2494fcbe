"""The shared token bucket: a burst passes, then callers are told how long to wait."""

from __future__ import annotations

import redis

from videopoll.ratelimit import RateLimiter


def test_burst_then_wait(redis_url: str) -> None:
    limiter = RateLimiter(redis.Redis.from_url(redis_url), rate_per_second=2, burst=3)
    waits = [limiter.acquire("kie") for _ in range(5)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert 0.0 < waits[3] <= 0.5
    assert limiter.acquire("other-provider") == 0.0  # buckets are per provider


def test_bucket_is_shared_between_clients(redis_url: str) -> None:
    a = RateLimiter(redis.Redis.from_url(redis_url), rate_per_second=1, burst=2)
    b = RateLimiter(redis.Redis.from_url(redis_url), rate_per_second=1, burst=2)
    assert (a.acquire("kie"), b.acquire("kie")) == (0.0, 0.0)
    assert a.acquire("kie") > 0 and b.acquire("kie") > 0
