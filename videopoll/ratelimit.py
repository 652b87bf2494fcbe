"""Token buckets in Redis, shared by every worker (invariant 6).

Celery's own ``rate_limit`` is per worker process; a provider's limit is per account, so the
bucket lives in Redis and one Lua script takes a token atomically. The clock is the Redis
server's (``TIME`` inside the script): a worker whose clock runs ahead cannot drain the bucket
for the others. A caller that gets no token re-schedules its poll for the returned wait, with
jitter so refused callers do not come back as one herd; it never sleeps holding a worker slot.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import redis

# KEYS[1] bucket; ARGV: rate per second, burst. Returns the wait in ms (0 = granted).
_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) / rate * 1000) end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return wait
"""


@dataclass(frozen=True)
class Limit:
    """A documented request budget: ``rate`` per second on average, ``burst`` at once."""

    rate: float
    burst: int


class RateLimiter:
    """``acquire(bucket, limit)`` returns 0.0 when a request may go now, else seconds to wait."""

    def __init__(self, client: redis.Redis, prefix: str = "videopoll", jitter: float = 0.5) -> None:
        self.redis = client
        self.prefix = prefix
        self.jitter = jitter
        self._take = client.register_script(_TAKE)

    def acquire(self, bucket: str, limit: Limit) -> float:
        wait_ms = int(self._take(keys=[f"{self.prefix}:bucket:{bucket}"],
                                 args=[limit.rate, limit.burst]))
        if wait_ms <= 0:
            return 0.0
        wait = wait_ms / 1000.0
        return wait * (1.0 + random.uniform(0.0, self.jitter))
