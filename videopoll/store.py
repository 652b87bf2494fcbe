"""The Redis job store: the truth about every job (invariant 1).

Keys (``P`` is the configured prefix):

- ``P:job:<id>``          the ``JobRecord`` as JSON
- ``P:idem:<key>``        idempotency key → job id (provider task, or ``Idempotency-Key``)
- ``P:due``               sorted set: job id → when the sweeper should look at it again
- ``P:stage:<id>:<name>`` delivery stage marker (an owner token with a lease, then "done")
- ``P:stage:<id>:<name>:tries`` how often a counted stage was begun (the store stage)
- ``P:outbox``            sorted set: terminal jobs whose notify/record chain has not finished
- ``P:outbox_runs:<id>``  hash: when that chain last started, and the sweeper's re-runs of it
- ``P:quarantine``        sorted set: jobs whose record cannot be read (kept out of the sweep)

Every change goes through ``update``: an optimistic compare-and-set that refuses to touch a
terminal job and moves the job's due time in the same write. One Lua call (``_SWAP``) writes
the new record only if the stored one is still, byte for byte, the one the mutation started
from; otherwise it hands back what is stored now and the mutation runs again on that. What a
change achieved is the return value of the *committed* attempt (``Change.outcome``): only the
last answer counts, so no flag set inside a retried closure can report a win that never
committed (invariant 2). The same call can carry the write's consequences (``Along``): a
poll turn's claim takes its provider token, its reschedule queues the next poll's message.
A poll turn is then two round trips (claim, reschedule) around its provider call.

Each store remembers the records it last wrote or read (``_known``, bounded), so a poll turn's
writes start from what its claim committed and cost one round trip each instead of a read
and a write. A remembered record is only a guess: the compare-and-set catches a stale one,
and a refusal (a terminal job, a fenced-off token) is never answered from memory but
confirmed against the stored record first.

Records are stored without their null and default fields (``exclude_defaults``): they read
back identically, and a job costs a third of the bytes. A field's default therefore is part
of the stored format: changing one changes what old records say.
"""

from __future__ import annotations

import enum
import json
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, Generic, TypeVar

import redis
from hiredis import pack_command
from redis.connection import AbstractConnection

from videopoll.models import POLLABLE_STATUSES, JobRecord, JobStatus
from videopoll.poll_messages import QueuedMessage
from videopoll.ratelimit import Bucket, take_token_lua

HISTORY_LIMIT = 50

# KEYS: job key, due key, queue list, idempotency keys… ; ARGV: job id, record JSON, due
# score, the first poll's message ("" for none). The record and its first poll are one write.
_CREATE = """
for i = 4, #KEYS do
  local existing = redis.call('GET', KEYS[i])
  if existing then return {existing, 0} end
end
for i = 4, #KEYS do redis.call('SET', KEYS[i], ARGV[1]) end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
if ARGV[4] ~= '' then redis.call('LPUSH', KEYS[3], ARGV[4]) end
return {ARGV[1], 1}
"""


# KEYS: job key, due key, outbox key, queue, bucket, idempotency keys… ; ARGV: expected
# record, new record, "live" | "terminal", due (or outbox) score, retention seconds, job id,
# a poll message to queue ("" for none), the bucket's rate and burst ("" for no token).
# Writes only if the stored record is still the expected one; else returns {0, what is
# stored (or nothing)}. A committed write also queues the message and takes the token, in
# the same call: {1, the bucket's wait in ms} when a token was asked for, else {1}.
_SWAP = """
local current = redis.call('GET', KEYS[1])
if current ~= ARGV[1] then
  if current then return {0, current} end
  return {0}
end
if ARGV[3] == 'terminal' then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[5])
  redis.call('ZREM', KEYS[2], ARGV[6])
  redis.call('ZADD', KEYS[3], ARGV[4], ARGV[6])
  for i = 6, #KEYS do redis.call('EXPIRE', KEYS[i], ARGV[5]) end
else
  redis.call('SET', KEYS[1], ARGV[2])
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[6])
end
if ARGV[7] ~= '' then redis.call('LPUSH', KEYS[4], ARGV[7]) end
if ARGV[8] == '' then return {1} end
local wait
""" + take_token_lua("KEYS[5]", "ARGV[8]", "ARGV[9]") + """
return {1, wait}
"""

# KEYS: due (or outbox) set; ARGV: job id, now, new score. Moves the entry only if still due.
_TAKE_DUE = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) <= tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], 'XX', ARGV[3], ARGV[1])
  return 1
end
return 0
"""

# KEYS: stage key, its tries counter; ARGV: owner, lease ms, retention s. Takes the stage if
# free, and counts the attempt in the same step.
_BEGIN_COUNTED = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 0 end
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return 1
"""

# KEYS: stage key; ARGV: owner, action ("renew" | "done" | "drop"), lease ms or retention s.
_STAGE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == 'renew' then redis.call('PEXPIRE', KEYS[1], ARGV[3])
elseif ARGV[2] == 'done' then redis.call('SET', KEYS[1], 'done', 'EX', ARGV[3])
else redis.call('DEL', KEYS[1]) end
return 1
"""

# KEYS: stage key, stream; ARGV: owner, retention seconds, stream max length, field, value…
# The event is appended and the stage marked done in one step, or neither: a worker killed
# before this leaves no event (the stage's lease runs out and a re-run appends it once), and
# one killed after leaves it done. Nothing in between can count a job twice.
_FINISH_WITH_EVENT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', unpack(ARGV, 4))
redis.call('SET', KEYS[1], 'done', 'EX', ARGV[2])
return 1
"""

T = TypeVar("T")
KNOWN_RECORDS = 20_000  # ~0.5 KB each: what one worker remembers of the jobs it polls


class Refuse(enum.Enum):
    """What a mutation returns to write nothing (the move is not legal from this state)."""

    REFUSE = "refuse"


REFUSE = Refuse.REFUSE


class UnreadableJobError(Exception):
    """A stored record that cannot be parsed back (corrupt, or written by a newer schema)."""

    def __init__(self, job_id: str, reason: str) -> None:
        super().__init__(job_id, reason)
        self.job_id = job_id
        self.reason = reason


@dataclass(frozen=True)
class Change(Generic[T]):
    """What one ``update`` committed: the record after it, and the mutation's own answer.

    ``applied`` is ``False`` when nothing was written (no such job, a terminal job, or the
    mutation refused the move); otherwise ``outcome`` is what the mutation returned on the
    attempt that committed.
    """

    job: JobRecord | None
    applied: bool = False
    outcome: T | None = None
    token_wait_ms: int = 0  # the bucket's answer when the write also took a token


@dataclass(frozen=True)
class Along:
    """What a committed write carries with it, in the same Lua call.

    ``message``: the job's next poll, queued on the broker's list (a broker on this Redis);
    ``bucket``: a provider token taken for the turn. Either happens only if the record is
    written, so neither can outlive a write that lost its compare-and-set, and neither
    costs a round trip of its own.
    """

    message: QueuedMessage | None = None
    bucket: Bucket | None = None


NOTHING_ALONG = Along()


@dataclass(frozen=True)
class OutboxRuns:
    """What the sweeper knows of a finished job's notify/record chain (epoch seconds, counts).

    ``started``: the latest time a chain's notify step began, ``ended`` when one ended without
    its worker dying (its record step, or its retry, is queued next); ``sent``: the sweeper's
    latest re-run;
    ``first``: its first; ``lapsed``: re-runs after a chain that started and never finished;
    ``resends``: re-runs of a chain that never started (queued behind a backlog, or lost).
    """

    started: float = 0.0
    ended: float = 0.0
    sent: float = 0.0
    first: float = 0.0
    lapsed: float = 0.0
    resends: float = 0.0


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
        self._swap = client.register_script(_SWAP)
        self._known: OrderedDict[str, str] = OrderedDict()
        self._known_lock = threading.Lock()
        self._take_due = client.register_script(_TAKE_DUE)
        self._stage = client.register_script(_STAGE)
        self._begin_counted = client.register_script(_BEGIN_COUNTED)
        self._finish_with_event = client.register_script(_FINISH_WITH_EVENT)

    # keys -------------------------------------------------------------------------------
    def job_key(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}"

    def idem_key(self, key: str) -> str:
        return f"{self.prefix}:idem:{key}"

    @property
    def due_key(self) -> str:
        return f"{self.prefix}:due"

    @property
    def outbox_key(self) -> str:
        return f"{self.prefix}:outbox"

    @property
    def quarantine_key(self) -> str:
        return f"{self.prefix}:quarantine"

    def stage_key(self, job_id: str, stage: str) -> str:
        return f"{self.prefix}:stage:{job_id}:{stage}"

    def channels_key(self, job_id: str) -> str:
        return f"{self.prefix}:channels:{job_id}"

    # reads ------------------------------------------------------------------------------
    def get(self, job_id: str) -> JobRecord | None:
        """The record, or ``None``; ``UnreadableJobError`` if it is stored but unparseable."""
        raw = self.redis.get(self.job_key(job_id))
        return self._parse(job_id, raw) if raw else None

    def due_jobs(self, now: float, limit: int = 500) -> list[str]:
        ids = self.redis.zrangebyscore(self.due_key, "-inf", now, start=0, num=limit)
        return [str(i) for i in ids]

    def outbox_due(self, now: float, limit: int = 500) -> list[str]:
        ids = self.redis.zrangebyscore(self.outbox_key, "-inf", now, start=0, num=limit)
        return [str(i) for i in ids]

    def ping(self) -> bool:
        return bool(self.redis.ping())

    def tallies(self, now: float) -> dict[str, int]:
        """How many jobs wait where, from the sets' sizes alone (cheap enough for each scrape):
        ``scheduled`` and ``overdue`` are in flight, ``finishing`` ended and still owes its
        notify/record chain, ``quarantined`` cannot be read."""
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.zcard(self.due_key)
            pipe.zcount(self.due_key, "-inf", now)
            pipe.zcard(self.outbox_key)
            pipe.zcard(self.quarantine_key)
            due, overdue, outbox, quarantined = (int(n) for n in pipe.execute())
        return {"scheduled": due - overdue, "overdue": overdue, "finishing": outbox,
                "quarantined": quarantined}

    # writes -----------------------------------------------------------------------------
    def create(self, job: JobRecord, first_poll: QueuedMessage | None = None
               ) -> tuple[JobRecord, bool]:
        """Store a new job unless one of its idempotency keys already names a job.

        Returns the job that owns the keys and whether it was created now (invariant 3).
        ``first_poll`` (a message for a broker on this same Redis) is queued in the same
        write, and only if the job was created.
        """
        keys, args = self._create_call(job, first_poll)
        return self._created(job, first_poll, self._create(keys=keys, args=args))

    def create_many(self, items: list[tuple[JobRecord, QueuedMessage | None]],
                    connection: AbstractConnection) -> list[tuple[JobRecord, bool] | Exception]:
        """``create`` for several jobs in one round trip (a pipeline of the same Lua call);
        each job's answer, or the exception its own write raised.

        ``connection`` is one the caller owns (the API's group commit holds one): no pool
        checkout, whose health check is a system call per round trip.
        """
        calls = [self._create_call(job, first) for job, first in items]
        # EVALSHA, not the Script: a pipeline of Scripts first asks SCRIPT EXISTS, a second
        # round trip
        replies = exchange(connection, [("EVALSHA", self._create.sha, len(keys), *keys, *args)
                                        for keys, args in calls])
        results: list[tuple[JobRecord, bool] | Exception] = []
        for (job, first), (keys, args), reply in zip(items, calls, replies, strict=True):
            try:
                if isinstance(reply, redis.exceptions.NoScriptError):  # it did not run
                    reply = self._create(keys=keys, args=args)  # loads the script, runs it
                elif isinstance(reply, Exception):
                    raise reply
                results.append(self._created(job, first, reply))
            except Exception as exc:  # this job's own failure; the others stand
                results.append(exc)
        return results

    def _create_call(self, job: JobRecord, first_poll: QueuedMessage | None
                     ) -> tuple[list[str], list[str | float]]:
        idem = [self.idem_key(k) for k in job.idempotency_keys]
        queue = first_poll.queue if first_poll else self.due_key
        keys = [self.job_key(job.job_id), self.due_key, queue, *idem]
        return keys, [job.job_id, self.dump(job), self._due(job),
                      first_poll.payload if first_poll else ""]

    def _created(self, job: JobRecord, first_poll: QueuedMessage | None, reply: Any
                 ) -> tuple[JobRecord, bool]:
        job_id, created = reply
        if created:
            return job, True
        existing = self.get(str(job_id))
        if existing is None:  # the key outlived its job: its retention ran out mid-flight
            self.redis.delete(*[self.idem_key(k) for k in job.idempotency_keys])
            return self.create(job, first_poll)
        return existing, False

    def update(self, job_id: str, mutate: Callable[[JobRecord], T | Refuse],
               along: Callable[[JobRecord, T], Along] | None = None) -> Change[T]:
        """Apply ``mutate`` atomically and report what the committed attempt decided.

        ``mutate`` returns ``REFUSE`` to refuse the move (nothing is written) or any other
        value as its outcome. It may run more than once (a lost compare-and-set re-runs it on
        the fresh record), so it must have no effect beyond changing the record it is given. A
        terminal job never changes again: ``mutate`` is not called for one.

        ``along`` names what the write carries with it (``Along``), from the changed record
        and the outcome: it happens if and only if this write commits, in the same call.
        """
        raw = self._recall(job_id)
        confirmed = raw is None  # a remembered record is a guess until Redis agrees
        if raw is None:
            raw = self._read(job_id)
        while True:
            if not raw:
                if confirmed:
                    self._forget(job_id)
                    return Change(None)
                raw, confirmed = self._read(job_id), True
                continue
            job = self._parse(job_id, raw)
            before = job.status
            outcome = REFUSE if before.terminal else mutate(job)
            if isinstance(outcome, Refuse):
                if not confirmed:
                    raw, confirmed = self._read(job_id), True
                    continue
                self._remember(job_id, raw)
                return Change(job if before.terminal else self._parse(job_id, raw))
            self._stamp(job, before)
            new = self.dump(job)
            extra = along(job, outcome) if along is not None else NOTHING_ALONG
            done, *current = self._swap(keys=self._swap_keys(job, extra),
                                        args=self._swap_args(job, raw, new, extra))
            if done:
                self._remember(job_id, new)
                return Change(job, True, outcome, int(current[0]) if current else 0)
            raw, confirmed = (current[0] if current else None), True

    def claim(self, job_id: str, token: int) -> JobRecord | None:
        """Take the poll scheduled as ``token``; ``None`` if it is stale, a duplicate or moot.

        The token moves on before any provider call, and ``next_poll_at`` becomes a lease: if
        this worker dies mid-call, the sweeper re-enqueues the job when the lease runs out.
        The claimed record's ``poll_token`` is the fence every later write of this turn checks.
        """
        turn = self.claim_turn(job_id, token, lambda job: None)
        return turn[0] if turn is not None else None

    def claim_turn(self, job_id: str, token: int,
                   bucket_for: Callable[[JobRecord], Bucket | None]
                   ) -> tuple[JobRecord, int] | None:
        """``claim``, also taking a token from ``bucket_for(job)`` (if any) in the same write.

        Returns the claimed job and the bucket's wait in ms (0: the provider call may go now).
        Only a committed claim takes a token, so a duplicate or stale message costs none.
        """
        def take(job: JobRecord) -> bool | Refuse:
            if job.poll_token != token or job.status not in POLLABLE_STATUSES:
                return REFUSE
            job.poll_token = token + 1
            job.next_poll_at = time.time() + self.timings.poll_lease_seconds
            return True

        change = self.update(job_id, take, lambda job, _: Along(bucket=bucket_for(job)))
        if not change.applied or change.job is None:
            return None
        return change.job, change.token_wait_ms

    def take_due(self, job_id: str, now: float, until: float) -> bool:
        """Atomically take a due entry for this sweep: ``False`` if it is no longer due.

        Two sweepers (two beats, or one sweep overtaking a slow one) read the same due list;
        only the one whose compare-and-set still sees the job overdue re-enqueues it.
        """
        return bool(self._take_due(keys=[self.due_key], args=[job_id, now, until]))

    def take_outbox(self, job_id: str, now: float, until: float) -> bool:
        return bool(self._take_due(keys=[self.outbox_key], args=[job_id, now, until]))

    def outbox_done(self, job_id: str) -> None:
        self.redis.zrem(self.outbox_key, job_id)

    def outbox_runs_key(self, job_id: str) -> str:
        return f"{self.prefix}:outbox_runs:{job_id}"

    def mark_chain(self, job_id: str, mark: str, now: float | None = None) -> None:
        """A chain's notify step ``started``, or ``ended`` (done, or handed to a retry): how the
        sweeper tells a chain whose worker died mid-run from one still queued, or lost."""
        assert mark in ("started", "ended")
        key = self.outbox_runs_key(job_id)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mark, time.time() if now is None else now)
            pipe.expire(key, self.timings.retention_seconds)
            pipe.execute()

    def outbox_runs(self, job_id: str) -> OutboxRuns:
        raw = self.redis.hgetall(self.outbox_runs_key(job_id))
        names = {f.name for f in fields(OutboxRuns)}
        return OutboxRuns(**{k: float(v) for k, v in raw.items() if k in names})

    def outbox_resent(self, job_id: str, now: float, lapsed: bool, first: float) -> None:
        """Note a re-run the sweeper published: when, and whether it counts as a lapsed run."""
        key = self.outbox_runs_key(job_id)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"sent": now})
            pipe.hsetnx(key, "first", first)
            pipe.hincrby(key, "lapsed" if lapsed else "resends", 1)
            pipe.expire(key, self.timings.retention_seconds)
            pipe.execute()

    def stages_held(self, job_id: str, stages: list[str]) -> bool:
        """Whether any of these stages is leased right now (a worker is running it)."""
        values = self.redis.mget([self.stage_key(job_id, stage) for stage in stages])
        return any(v is not None and v != "done" for v in values)

    def forget_due(self, job_id: str) -> None:
        self.redis.zrem(self.due_key, job_id)

    def quarantine(self, job_id: str) -> None:
        """Keep an unreadable record out of every sweep, for a person to look at."""
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(self.quarantine_key, {job_id: time.time()})
            pipe.zrem(self.due_key, job_id)
            pipe.zrem(self.outbox_key, job_id)
            pipe.execute()

    def link_task(self, family: str, task_id: str, job_id: str) -> None:
        """Make a job findable by its provider task id (push callbacks name only the task)."""
        ttl = self.timings.retention_seconds * 2
        self.redis.set(self.idem_key(f"task:{family}:{task_id}"), job_id, nx=True, ex=ttl)

    def job_for_task(self, family: str, task_id: str) -> str | None:
        found = self.redis.get(self.idem_key(f"task:{family}:{task_id}"))
        return str(found) if found else None

    def record_orphan(self, job_id: str, family: str, task_id: str) -> None:
        """Remember a provider task no job owns (created after its job was canceled)."""
        self.redis.set(f"{self.prefix}:orphan:{job_id}", f"{family}:{task_id}",
                       ex=self.timings.retention_seconds)

    def sweep_ran(self, at: float) -> None:
        """Beat's heartbeat: ``/healthz`` turns unhealthy when this grows old."""
        self.redis.set(f"{self.prefix}:sweep:last", f"{at:.3f}")
        self.redis.incr(f"{self.prefix}:sweep:count")

    def last_sweep(self) -> float | None:
        raw = self.redis.get(f"{self.prefix}:sweep:last")
        return float(raw) if raw else None

    # delivery stage markers -------------------------------------------------------------
    def begin_stage(self, job_id: str, stage: str, lease_seconds: float,
                    counted: bool = False) -> str | None:
        """Claim a delivery stage; the owner token, or ``None`` if done or held elsewhere.

        ``counted`` also counts the attempt (``stage_tries``): the sweeper tells a chain that
        began its stage and died from one that never ran (queued behind a backlog).
        """
        owner = uuid.uuid4().hex
        key = self.stage_key(job_id, stage)
        if counted:
            taken = self._begin_counted(keys=[key, self._tries_key(job_id, stage)], args=[
                owner, int(lease_seconds * 1000), self.timings.retention_seconds])
        else:
            taken = self.redis.set(key, owner, nx=True, px=int(lease_seconds * 1000))
        return owner if taken else None

    def stage_tries(self, job_id: str, stage: str) -> int:
        """How many times a ``counted`` stage was begun."""
        return int(self.redis.get(self._tries_key(job_id, stage)) or 0)

    def _tries_key(self, job_id: str, stage: str) -> str:
        return f"{self.stage_key(job_id, stage)}:tries"

    def renew_stage(self, job_id: str, stage: str, owner: str, lease_seconds: float) -> bool:
        """Extend our lease; ``False`` means it ran out and someone else may hold the stage."""
        return bool(self._stage(keys=[self.stage_key(job_id, stage)],
                                args=[owner, "renew", int(lease_seconds * 1000)]))

    def finish_stage(self, job_id: str, stage: str, owner: str) -> bool:
        return bool(self._stage(keys=[self.stage_key(job_id, stage)],
                                args=[owner, "done", self.timings.retention_seconds]))

    def finish_stage_with_event(self, job_id: str, stage: str, owner: str, stream: str,
                                fields: dict[str, str], maxlen: int) -> bool:
        """Append ``fields`` to ``stream`` and mark our stage done, atomically; ``False`` (and
        nothing appended) if the stage is no longer ours."""
        flat = [item for pair in fields.items() for item in pair]
        return bool(self._finish_with_event(
            keys=[self.stage_key(job_id, stage), stream],
            args=[owner, self.timings.retention_seconds, maxlen, *flat]))

    def record_channel(self, job_id: str, channel: str, result: dict[str, Any]) -> None:
        """What one notification channel did for a job (sent, skipped and why, failed)."""
        key = self.channels_key(job_id)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, channel, json.dumps(result))
            pipe.expire(key, self.timings.retention_seconds)
            pipe.execute()

    def channel_result(self, job_id: str, channel: str) -> dict[str, Any] | None:
        raw = self.redis.hget(self.channels_key(job_id), channel)
        return json.loads(raw) if raw else None

    def channel_results(self, job_id: str) -> dict[str, Any]:
        raw = self.redis.hgetall(self.channels_key(job_id))
        return {str(k): json.loads(v) for k, v in raw.items()}

    def abandon_stage(self, job_id: str, stage: str, owner: str) -> None:
        """Let a later run retry a stage that failed before doing its side effect."""
        self._stage(keys=[self.stage_key(job_id, stage)], args=[owner, "drop", 0])

    def stage_done(self, job_id: str, stage: str) -> bool:
        return self.redis.get(self.stage_key(job_id, stage)) == "done"

    # internals --------------------------------------------------------------------------
    def _parse(self, job_id: str, raw: str | bytes) -> JobRecord:
        try:
            return JobRecord.model_validate_json(raw)
        except (ValueError, RecursionError) as exc:  # pydantic's ValidationError is a ValueError
            raise UnreadableJobError(job_id, f"{type(exc).__name__}: {str(exc)[:200]}") from exc

    def _stamp(self, job: JobRecord, before: JobStatus) -> None:
        now = time.time()
        job.updated_at = now
        if job.status is not before:
            job.history = [*job.history, (now, job.status.value)][-HISTORY_LIMIT:]
        if job.status.terminal and job.finished_at is None:
            job.finished_at = now

    @staticmethod
    def dump(job: JobRecord) -> str:
        """The stored form: no null or default field (it reads back to an equal record)."""
        return job.model_dump_json(exclude_defaults=True)

    def _swap_keys(self, job: JobRecord, extra: Along) -> list[str]:
        # an unused queue or bucket slot names the due set, which the script then leaves be
        keys = [self.job_key(job.job_id), self.due_key, self.outbox_key,
                extra.message.queue if extra.message else self.due_key,
                extra.bucket.key if extra.bucket else self.due_key]
        if job.status.terminal:
            keys += [self.idem_key(idem) for idem in job.idempotency_keys]
        return keys

    def _swap_args(self, job: JobRecord, expected: str, new: str, extra: Along
                   ) -> list[str | float | int]:
        message = extra.message.payload if extra.message else ""
        bucket: list[str | float | int] = (
            [extra.bucket.limit.rate, extra.bucket.limit.burst] if extra.bucket else ["", ""])
        # A terminal job's score is in the outbox: the notify/record chain is owed until it
        # says it is done, and the sweeper re-runs it if the publish after this write is lost.
        kind, score = (("terminal", time.time() + self.timings.sweep_grace_seconds)
                       if job.status.terminal else ("live", self._due(job)))
        return [expected, new, kind, score, self.timings.retention_seconds, job.job_id, message,
                *bucket]

    def _read(self, job_id: str) -> str | None:
        raw = self.redis.get(self.job_key(job_id))
        return raw.decode() if isinstance(raw, bytes) else raw

    def _recall(self, job_id: str) -> str | None:
        with self._known_lock:
            return self._known.get(job_id)

    def _remember(self, job_id: str, raw: str) -> None:
        with self._known_lock:
            self._known[job_id] = raw
            self._known.move_to_end(job_id)
            while len(self._known) > KNOWN_RECORDS:
                self._known.popitem(last=False)

    def _forget(self, job_id: str) -> None:
        with self._known_lock:
            self._known.pop(job_id, None)

    def _due(self, job: JobRecord) -> float:
        """When the sweeper should look at a job whose expected message never came."""
        t = self.timings
        if job.status is JobStatus.DELIVERING:
            return job.updated_at + t.delivery_lease_seconds
        base = job.next_poll_at if job.next_poll_at is not None else time.time()
        if job.status is not JobStatus.DELAYED:  # delayed jobs are driven by the sweeper alone
            base += t.sweep_grace_seconds
        return min(base, job.deadline_at)  # the deadline is kept even if no poll is due


def exchange(connection: AbstractConnection, commands: list[tuple[Any, ...]]) -> list[Any]:
    """Write ``commands`` at once and read every reply (an error reply as its exception), as
    a pipeline does. A connection that broke is retried as the client's own policy says
    (the API's: once, at once, for a stale connection); redis-py drops the connection on any
    other failure, so no reply is ever read by the wrong request."""
    conn: Any = connection  # redis-py's connection methods carry no type hints

    # one buffer, one send: redis-py cuts a batch into 6 KB chunks and sends each on its own,
    # a system call apiece (an API batch of eight jobs was three). hiredis packs each command
    # as redis-py would, less its per-argument pass in Python (a tenth of a submission).
    packed = b"".join(map(pack_command, commands))

    def attempt() -> list[Any]:
        conn.send_packed_command([packed])
        replies: list[Any] = []
        for _ in commands:
            try:
                replies.append(conn.read_response())
            except redis.ResponseError as exc:
                replies.append(exc)
        return replies

    replies: list[Any] = conn.retry.call_with_retry(attempt, lambda _error: conn.disconnect())
    return replies
