"""The Redis job store: the truth about every job (invariant 1).

Keys (``P`` is the configured prefix):

- ``P:job:<id>``          the ``JobRecord`` as JSON
- ``P:idem:<key>``        idempotency key → job id (provider task, or ``Idempotency-Key``)
- ``P:due``               sorted set: job id → when the sweeper should look at it again
- ``P:stage:<id>:<name>`` delivery stage marker ("running" with a lease, then "done")

Every change goes through ``update``: an optimistic WATCH/MULTI transaction that re-reads the
record, refuses to touch a terminal job, and moves the job's due time in the same write. That
is what makes a poll message a hint: the poller ``claim``s its attempt with a compare-and-set
on ``poll_token``, so a duplicate or stale message finds the token moved and does nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from videopoll.models import JobRecord, JobStatus

HISTORY_LIMIT = 50

# KEYS: job key, due key, idempotency keys… ; ARGV: job id, record JSON, due score
_CREATE = """
for i = 3, #KEYS do
  local existing = redis.call('GET', KEYS[i])
  if existing then return {existing, 0} end
end
for i = 3, #KEYS do redis.call('SET', KEYS[i], ARGV[1]) end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return {ARGV[1], 1}
"""


@dataclass(frozen=True)
class StoreTimings:
    """How long the sweeper waits before treating a job's expected message as lost."""

    sweep_grace_seconds: float = 60.0
    poll_lease_seconds: float = 120.0
    delivery_lease_seconds: float = 600.0
    retention_seconds: int = 7 * 86400


class JobStore:
    """Reads and changes job records; the only module that knows the key layout."""

    def __init__(
        self, client: redis.Redis, prefix: str = "videopoll", timings: StoreTimings | None = None
    ) -> None:
        self.redis = client
        self.prefix = prefix
        self.timings = timings or StoreTimings()
        self._create = client.register_script(_CREATE)

    # keys -------------------------------------------------------------------------------
    def job_key(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}"

    def idem_key(self, key: str) -> str:
        return f"{self.prefix}:idem:{key}"

    @property
    def due_key(self) -> str:
        return f"{self.prefix}:due"

    def stage_key(self, job_id: str, stage: str) -> str:
        return f"{self.prefix}:stage:{job_id}:{stage}"

    # reads ------------------------------------------------------------------------------
    def get(self, job_id: str) -> JobRecord | None:
        raw = self.redis.get(self.job_key(job_id))
        return JobRecord.model_validate_json(raw) if raw else None

    def due_jobs(self, now: float, limit: int = 500) -> list[str]:
        ids = self.redis.zrangebyscore(self.due_key, "-inf", now, start=0, num=limit)
        return [str(i) for i in ids]

    def ping(self) -> bool:
        return bool(self.redis.ping())

    # writes -----------------------------------------------------------------------------
    def create(self, job: JobRecord) -> tuple[JobRecord, bool]:
        """Store a new job unless one of its idempotency keys already names a job.

        Returns the job that owns the keys and whether it was created now (invariant 3).
        """
        keys = [self.job_key(job.job_id), self.due_key]
        keys += [self.idem_key(k) for k in job.idempotency_keys]
        job_id, created = self._create(
            keys=keys, args=[job.job_id, job.model_dump_json(), self._due(job)]
        )
        if created:
            return job, True
        existing = self.get(str(job_id))
        if existing is None:  # the key outlived its job: its retention ran out mid-flight
            self.redis.delete(*keys[2:])
            return self.create(job)
        return existing, False

    def update(
        self, job_id: str, mutate: Callable[[JobRecord], bool | None]
    ) -> JobRecord | None:
        """Apply ``mutate`` atomically; it returns ``False`` to write nothing.

        A terminal job never changes again: ``mutate`` is not called for one, and the stored
        record is returned unchanged. ``None`` means there is no such job.
        """
        key = self.job_key(job_id)
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)  # type: ignore[no-untyped-call]
                    raw = pipe.get(key)
                    if not raw:
                        return None
                    job = JobRecord.model_validate_json(raw)
                    before = job.status
                    if before.terminal or mutate(job) is False:
                        pipe.unwatch()
                        return job
                    self._stamp(job, before)
                    pipe.multi()
                    self._write(pipe, job)
                    pipe.execute()
                    return job
                except redis.WatchError:
                    continue

    def claim(self, job_id: str, token: int) -> JobRecord | None:
        """Take the poll scheduled as ``token``; ``None`` if it is stale, a duplicate or moot.

        The token moves on before any provider call, and ``next_poll_at`` becomes a lease: if
        this worker dies mid-call, the sweeper re-enqueues the job when the lease runs out.
        """
        claimed: list[bool] = []

        def take(job: JobRecord) -> bool:
            if job.poll_token != token or job.status is JobStatus.DELIVERING:
                return False
            job.poll_token = token + 1
            job.next_poll_at = time.time() + self.timings.poll_lease_seconds
            claimed.append(True)
            return True

        job = self.update(job_id, take)
        return job if claimed else None

    def touch_due(self, job_id: str, when: float) -> None:
        """Push the sweeper's next look at a job to ``when`` (after it re-enqueued work)."""
        self.redis.zadd(self.due_key, {job_id: when}, xx=True)

    def forget_due(self, job_id: str) -> None:
        self.redis.zrem(self.due_key, job_id)

    # delivery stage markers -------------------------------------------------------------
    def begin_stage(self, job_id: str, stage: str, lease_seconds: float) -> bool:
        """Claim a delivery stage; ``False`` if it is done or another worker holds it."""
        return bool(
            self.redis.set(
                self.stage_key(job_id, stage), "running", nx=True, px=int(lease_seconds * 1000)
            )
        )

    def finish_stage(self, job_id: str, stage: str) -> None:
        self.redis.set(self.stage_key(job_id, stage), "done", ex=self.timings.retention_seconds)

    def abandon_stage(self, job_id: str, stage: str) -> None:
        """Let a later run retry a stage that failed before doing its side effect."""
        self.redis.delete(self.stage_key(job_id, stage))

    def stage_done(self, job_id: str, stage: str) -> bool:
        return self.redis.get(self.stage_key(job_id, stage)) == "done"

    # internals --------------------------------------------------------------------------
    def _stamp(self, job: JobRecord, before: JobStatus) -> None:
        now = time.time()
        job.updated_at = now
        if job.status is not before:
            job.history = [*job.history, (now, job.status.value)][-HISTORY_LIMIT:]
        if job.status.terminal and job.finished_at is None:
            job.finished_at = now

    def _write(self, pipe: redis.client.Pipeline, job: JobRecord) -> None:
        key = self.job_key(job.job_id)
        if job.status.terminal:
            pipe.set(key, job.model_dump_json(), ex=self.timings.retention_seconds)
            pipe.zrem(self.due_key, job.job_id)
            for idem in job.idempotency_keys:
                pipe.expire(self.idem_key(idem), self.timings.retention_seconds)
        else:
            pipe.set(key, job.model_dump_json())
            pipe.zadd(self.due_key, {job.job_id: self._due(job)})

    def _due(self, job: JobRecord) -> float:
        """When the sweeper should look at a job whose expected message never came."""
        t = self.timings
        if job.status is JobStatus.DELIVERING:
            return job.updated_at + t.delivery_lease_seconds
        base = job.next_poll_at if job.next_poll_at is not None else time.time()
        if job.status is JobStatus.DELAYED:
            return base  # delayed jobs are driven by the sweeper alone
        return base + t.sweep_grace_seconds
