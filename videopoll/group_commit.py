"""Submissions that arrive while one is being written share the next Redis round trip.

Why: under load a submission's one Lua call is a fifth of the API's CPU, most of it the
round trip itself (a pooled connection's health check, the send, the wait, the reply), and
Redis spends as much again reading and answering each call alone. Here the first
submission to find nobody writing sends its job at once: no added wait when the API is idle.
Submissions that come in while that write is under way queue up, and the next leader (the
first of them, woken when the write returns) sends them all as one pipeline of the same
Lua call. Every job still gets its own atomic create, with its own answer or error.

Batches go out one at a time, so the batcher owns one connection of its own for them: no
pool checkout (and its health check, a system call) per round trip.

The lock and events are ``threading``'s, which gevent patches in the API's workers: there a
"thread" is a greenlet, and a batch fills while the leader waits on its socket.

A submission still queued after ``wait_seconds`` (leaders stuck past every Redis timeout)
leaves the queue unwritten with ``redis.TimeoutError`` (the API answers 503: retry); one
already in a batch waits for that batch's answer, which the Redis timeouts bound. Nothing
is written twice, and a handed-over lead is never dropped.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Any

import redis
from redis.connection import AbstractConnection

from videopoll.models import JobRecord
from videopoll.poll_messages import QueuedMessage
from videopoll.store import JobStore

MAX_BATCH = 64


@dataclass
class _Waiter:
    job: JobRecord
    first_poll: QueuedMessage | None
    wake: threading.Event = field(default_factory=threading.Event)
    answer: tuple[JobRecord, bool] | None = None
    error: BaseException | None = None
    answered: bool = False
    lead: bool = False  # handed the next batch (set under the batcher's lock)


class CreateBatcher:
    """``JobStore.create`` for concurrent callers, one pipeline per round trip."""

    def __init__(self, store: JobStore, wait_seconds: float, max_batch: int = MAX_BATCH) -> None:
        self.store = store
        self.wait_seconds = wait_seconds
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._queue: list[_Waiter] = []
        self._writing = False
        self._connection: AbstractConnection | None = None
        self._made_for: tuple[object, int] | None = None
        self.batches = 0  # round trips made, for the tests and the curious

    def create(self, job: JobRecord, first_poll: QueuedMessage | None = None
               ) -> tuple[JobRecord, bool]:
        me = _Waiter(job, first_poll)
        with self._lock:
            self._queue.append(me)
            lead = not self._writing
            self._writing = True
        while True:
            if lead:
                self._write_one_batch()
            if not me.answered and not me.wake.wait(self.wait_seconds):
                with self._lock:
                    queued = not me.lead and me in self._queue
                    if queued:  # nobody took it: leave, nothing was written
                        self._queue.remove(me)
                if queued:
                    raise redis.TimeoutError("no Redis round trip took this submission")
                if not me.lead:  # in a batch being written: the answer comes with that write
                    me.wake.wait()
            if me.answered:
                break
            me.wake.clear()
            me.lead, lead = False, True
        if me.error is not None:
            raise me.error
        assert me.answer is not None
        return me.answer

    def _write_one_batch(self) -> None:
        with self._lock:
            batch = self._queue[:self.max_batch]
            del self._queue[:len(batch)]
        answers: list[tuple[JobRecord, bool] | BaseException] = []
        try:
            if batch:
                answers = list(self.store.create_many([(w.job, w.first_poll) for w in batch],
                                                      self._own_connection()))
        except BaseException as exc:  # the round trip failed (or this greenlet was killed)
            answers = [exc] * len(batch)
            raise
        finally:
            # whatever happened, hand the lead on and answer every job in this batch: a
            # waiter left unanswered, or a lead dropped, would hang every submission after
            with self._lock:
                self.batches += 1
                successor = self._queue[0] if self._queue else None
                self._writing = successor is not None
                if successor is not None:
                    successor.lead = True
                    successor.wake.set()  # it writes the next batch
            for waiter, answer in zip(batch, answers, strict=True):
                if isinstance(answer, BaseException):
                    waiter.error = answer
                else:
                    waiter.answer = answer
                waiter.answered = True
                waiter.wake.set()

    def _own_connection(self) -> AbstractConnection:
        """The batches' connection, made like the store's pooled ones (same server, timeouts,
        retry policy); a forked process makes its own rather than share a socket.

        Checked before each use as the pool checks its own: a connection with bytes waiting
        (a server that closed it, a reply nobody read) is made anew, so no batch reads
        another's answer. Under gevent the check's ``poll`` is also a switch to the hub, which
        lets the other connections' greenlets run: without it p99 rose from 16 to 36-85 ms
        under wrk.
        """
        pool = self.store.redis.connection_pool
        if self._connection is None or self._made_for != (pool, os.getpid()):
            if self._connection is not None:
                self._connection.disconnect()  # type: ignore[no-untyped-call]
            self._connection = pool.connection_class(**pool.connection_kwargs)
            self._made_for = (pool, os.getpid())
        connection: Any = self._connection  # redis-py's connection methods carry no hints
        try:
            if connection.can_read():
                raise redis.ConnectionError("connection has unread data")
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            connection.disconnect()
            connection.connect()
        return self._connection
