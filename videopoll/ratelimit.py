"""A token bucket in Redis, shared by every worker (invariant 6).

Celery's own ``rate_limit`` is per worker process; a provider's limit is per account, so the
bucket lives in Redis and one Lua script takes a token atomically. A caller that gets no token
re-schedules its poll for the returned wait; it never sleeps holding a worker slot.
"""

from __future__ import annotations

import time

import redis

# KEYS[1] bucket; ARGV: rate per second, burst, now (s). Returns wait in ms (0 = granted).
_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) / rate * 1000) end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return wait
"""


class RateLimiter:
    """``acquire(name)`` returns 0.0 when a request may go now, else seconds to wait."""

    def __init__(
        self, client: redis.Redis, rate_per_second: float, burst: int, prefix: str = "videopoll"
    ) -> None:
        self.redis = client
        self.rate = rate_per_second
        self.burst = burst
        self.prefix = prefix
        self._take = client.register_script(_TAKE)

    def acquire(self, name: str) -> float:
        wait_ms = self._take(
            keys=[f"{self.prefix}:bucket:{name}"], args=[self.rate, self.burst, time.time()]
        )
        return int(wait_ms) / 1000.0
