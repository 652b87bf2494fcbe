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


def take_token_lua(key: str, rate: str, burst: str) -> str:
    """Lua that takes one token from the bucket at ``key`` and sets ``wait`` (ms, 0 = granted).

    A text, not only a script, so that a poll turn's claim can take its token in the same
    Lua call (``JobStore.claim_turn``): one round trip fewer on every poll. The caller's
    script declares ``local wait``; the bucket's own locals stay inside ``do … end``.
    """
    return f"""
do
  local rate = tonumber({rate})
  local burst = tonumber({burst})
  local t = redis.call('TIME')
  local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
  local state = redis.call('HMGET', {key}, 'tokens', 'ts')
  local tokens = tonumber(state[1]) or burst
  local ts = tonumber(state[2]) or now
  tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
  wait = 0
  if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) / rate * 1000) end
  redis.call('HSET', {key}, 'tokens', tostring(tokens), 'ts', tostring(now))
  redis.call('PEXPIRE', {key}, math.ceil(burst / rate * 1000) + 1000)
end
"""


# KEYS[1] bucket; ARGV: rate per second, burst. Returns the wait in ms (0 = granted).
_TAKE = "local wait\n" + take_token_lua("KEYS[1]", "ARGV[1]", "ARGV[2]") + "return wait\n"


@dataclass(frozen=True)
class Limit:
    """A documented request budget: ``rate`` per second on average, ``burst`` at once."""

    rate: float
    burst: int


@dataclass(frozen=True)
class Bucket:
    """One account's bucket: its Redis key and the budget it refills at."""

    key: str
    limit: Limit


class RateLimiter:
    """``acquire(bucket, limit)`` returns 0.0 when a request may go now, else seconds to wait."""

    def __init__(self, client: redis.Redis, prefix: str = "videopoll", jitter: float = 0.5) -> None:
        self.redis = client
        self.prefix = prefix
        self.jitter = jitter
        self._take = client.register_script(_TAKE)

    def bucket(self, name: str, limit: Limit) -> Bucket:
        return Bucket(f"{self.prefix}:bucket:{name}", limit)

    def acquire(self, name: str, limit: Limit) -> float:
        return self.take(self.bucket(name, limit))

    def take(self, bucket: Bucket) -> float:
        wait_ms = self._take(keys=[bucket.key], args=[bucket.limit.rate, bucket.limit.burst])
        return self.delay_for(int(wait_ms))

    def delay_for(self, wait_ms: int) -> float:
        """Seconds a refused caller waits: the bucket's answer plus jitter (no herd)."""
        if wait_ms <= 0:
            return 0.0
        return wait_ms / 1000.0 * (1.0 + random.uniform(0.0, self.jitter))
