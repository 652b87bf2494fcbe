"""The objects a worker or the API needs, built once at an entry point from ``Settings``.

Nothing here runs at import: ``get_runtime()`` builds on first call in each process (after
Celery forks), so every process gets its own Redis pool and HTTP sessions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Literal

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from videopoll.group_commit import CreateBatcher
from videopoll.notifiers import Notifier, build_notifiers
from videopoll.poll_messages import direct_capable
from videopoll.providers import PROVIDERS
from videopoll.providers.base import Provider
from videopoll.ratelimit import Bucket, Limit, RateLimiter
from videopoll.settings import Settings, load_settings
from videopoll.storage import Storage, build_storage
from videopoll.store import JobStore, StoreTimings


@dataclass
class Runtime:
    settings: Settings
    store: JobStore
    limiter: RateLimiter
    storage: Storage
    notifiers: list[Notifier]
    _providers: dict[str, Provider] = field(default_factory=dict)

    def provider(self, family: str) -> Provider:
        """One adapter (and HTTP session) per family per process."""
        if family not in self._providers:
            cls = PROVIDERS[family]
            self._providers[family] = cls(
                self.settings.provider_config(cls.config_name, cls.config_class),
                timeout=self.settings.provider_timeout_seconds,
                callback_max_age=self.settings.callback_max_age_seconds,
            )
        return self._providers[family]

    @cached_property
    def session_redis(self) -> redis.Redis:
        """Where the caller's sessions live: the job store's Redis unless configured apart."""
        url = self.settings.session_redis_url
        if not url:
            return self.store.redis
        return redis.Redis.from_url(url, decode_responses=True, socket_timeout=5,
                                    socket_connect_timeout=5)

    @cached_property
    def direct_broker(self) -> redis.Redis | None:
        """The Redis whose lists are the broker's queues, when poll messages go there directly:
        the job store's own client when the broker is the same Redis (the default)."""
        s = self.settings
        url = s.effective_broker_url
        if not s.direct_publish or not direct_capable(url):
            return None
        if url == s.redis_url:
            return self.store.redis
        kwargs = self.store.redis.connection_pool.connection_kwargs
        return redis.Redis.from_url(url, decode_responses=True,
                                    socket_timeout=kwargs.get("socket_timeout"),
                                    socket_connect_timeout=kwargs.get("socket_connect_timeout"))

    @cached_property
    def submissions(self) -> CreateBatcher:
        """Where the API creates jobs: concurrent submissions share a round trip."""
        return CreateBatcher(self.store, 3 * self.settings.api_redis_timeout_seconds + 1)

    @property
    def first_poll_in_create(self) -> bool:
        """Whether a new job's first poll can be queued by the store's own create call."""
        return self.direct_broker is self.store.redis

    def bucket(self, family: str, kind: Literal["status", "submit"]) -> Bucket:
        """The provider account's bucket for ``kind`` calls, at the configured budget (a poll
        turn's claim takes its token: ``JobStore.claim_turn``)."""
        cls = PROVIDERS[family]
        s = self.settings
        if kind == "submit":
            limit = Limit(s.submit_rate_limit_per_second or cls.submit_limit.rate,
                          s.submit_rate_limit_burst or cls.submit_limit.burst)
        else:
            limit = Limit(s.rate_limit_per_second or cls.status_limit.rate,
                          s.rate_limit_burst or cls.status_limit.burst)
        return self.limiter.bucket(f"{cls.rate_account or family}:{kind}", limit)


def build_runtime(settings: Settings, redis_timeout: float | None = None) -> Runtime:
    """``redis_timeout`` bounds every Redis call: the API passes a short one so that an outage
    is a prompt 503, never a retried command; workers keep the patient default."""
    if redis_timeout is None:
        client = redis.Redis.from_url(
            settings.redis_url, decode_responses=True, socket_timeout=10, socket_connect_timeout=5
        )
    else:
        # One immediate retry for a pooled connection that went stale (a Redis restart); none
        # on a timeout, which would double the wait and may re-run a command that did land.
        client = redis.Redis.from_url(
            settings.redis_url, decode_responses=True, socket_timeout=redis_timeout,
            socket_connect_timeout=redis_timeout,
            retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
        )
    timings = StoreTimings(
        sweep_grace_seconds=settings.sweep_grace_seconds,
        poll_lease_seconds=settings.poll_lease_seconds,
        delivery_lease_seconds=settings.delivery_lease_seconds,
        retention_seconds=settings.result_retention_seconds,
    )
    return Runtime(
        settings=settings,
        store=JobStore(client, settings.key_prefix, timings),
        limiter=RateLimiter(client, settings.key_prefix),
        storage=build_storage(settings.storage_url, endpoint_url=settings.s3_endpoint_url,
                              public_base_url=settings.public_video_base_url,
                              presign_seconds=settings.presign_seconds),
        notifiers=build_notifiers(settings),
    )


@lru_cache(maxsize=1)
def get_runtime() -> Runtime:
    return build_runtime(load_settings())
