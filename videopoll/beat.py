"""Celery beat that fires only while it holds a lease in Redis: two beats never double-fire.

Celery's default scheduler needs a writable schedule file (a fresh clone has no ``var/``, so
beat never ran) and knows nothing of a second beat. The sweep needs neither a file nor a
history: it runs every interval, and what it recovers lives in Redis. So this is Celery's
in-memory scheduler plus a leader lease:

* every tick first renews, or takes, the lease (``SET NX PX`` on the server's clock, renewed
  only by its holder); a beat fires only right after it renewed, so a beat that stalled past
  its lease finds it taken and stands by instead of firing beside the new leader;
* a standby beat polls the lease and takes over within one lease after the leader dies;
* a Redis outage or restart is a skipped tick, never an exit: beat stays up and resumes.

We chose this over ``celery-redbeat`` (schedule and lock in Redis): its tick extends the lock
outside its retry wrapper, so a Redis restart makes beat exit, and a restart without
persistence empties its schedule until beat restarts — the silent failure we are removing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import uuid
from typing import Any

import redis
from celery.beat import Scheduler

from videopoll.settings import load_settings

log = logging.getLogger(__name__)

LEASE_SECONDS = 10.0

# Take the lease when it is free, renew it when it is ours; never touch another beat's lease.
_HOLD = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class LeaderScheduler(Scheduler):  # type: ignore[misc]  # celery ships no type hints
    """Celery's in-memory scheduler, firing only while this beat holds the Redis lease."""

    lease_seconds = LEASE_SECONDS

    def __init__(self, app: Any, *args: Any, **kwargs: Any) -> None:
        settings = load_settings()
        self._redis = redis.Redis.from_url(
            settings.redis_url, socket_timeout=2, socket_connect_timeout=2
        )
        self._key = f"{settings.key_prefix}:beat:leader"
        self._me = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._state = "starting"
        super().__init__(app, *args, **kwargs)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        """Fire what is due only after renewing the lease; otherwise wait a third of it."""
        check_again = self.lease_seconds / 3
        if not self._hold_lease():
            return check_again
        return min(float(super().tick(*args, **kwargs)), check_again)

    def close(self) -> None:
        """Hand the lease over at once on a clean stop, rather than after it expires."""
        with contextlib.suppress(redis.RedisError):  # otherwise it expires by itself
            self._redis.eval(_RELEASE, 1, self._key, self._me)
        super().close()

    def _hold_lease(self) -> bool:
        try:
            held = bool(self._redis.eval(_HOLD, 1, self._key, self._me,
                                         int(self.lease_seconds * 1000)))
        except redis.RedisError as exc:
            self._become("unreachable", "beat: Redis unreachable (%s); not firing until it "
                         "answers", type(exc).__name__)
            return False
        if held:
            self._become("leading", "beat: leading (lease %s, %ss)", self._key,
                         self.lease_seconds)
        else:
            self._become("standby", "beat: standing by; another beat holds %s", self._key)
        return held

    def _become(self, state: str, message: str, *args: object) -> None:
        """Log each change of role once, not every tick."""
        if state != self._state:
            self._state = state
            (log.warning if state == "unreachable" else log.info)(message, *args)
