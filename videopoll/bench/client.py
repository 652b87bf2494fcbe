"""The benchmark's own Celery client: publishes by task name and talks to workers' control.

It is not ``videopoll.celery_app`` (whose configuration reads this process's environment);
it only needs the broker. ``totals`` and ``lags`` go through remote control, so counting adds
nothing to the Redis traffic of the tasks being measured.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

QUEUE = "videopoll"


class Client:
    """``workers``: how many replies a control call waits for (it returns once they came)."""

    def __init__(self, broker_url: str, workers: int = 1) -> None:
        self.workers = workers
        self.app = Celery("videopoll-bench", broker=broker_url)
        self.app.conf.broker_connection_retry_on_startup = True

    def send(self, name: str, args: tuple[Any, ...], countdown: float | None = None) -> None:
        self.app.send_task(name, args, queue=QUEUE, countdown=countdown)

    def totals(self, task: str) -> int:
        """How many ``task`` runs every worker has finished so far."""
        stats = self.app.control.inspect(timeout=5, limit=self.workers).stats() or {}
        return sum(int(s.get("total", {}).get(task, 0)) for s in stats.values())

    def floor(self, running: bool) -> None:
        self.app.control.broadcast("bench_floor", arguments={"running": running}, reply=True,
                                   timeout=5, limit=self.workers)

    def lags_ms(self) -> list[int]:
        replies = self.app.control.broadcast("bench_lags", reply=True, timeout=10,
                                             limit=self.workers) or []
        return [lag for reply in replies for answer in reply.values()
                for lag in answer.get("lags_ms", [])]

    def close(self) -> None:
        self.app.close()
