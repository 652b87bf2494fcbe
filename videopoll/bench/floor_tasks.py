"""Loaded into a real worker with ``--include`` for the poll figures: the two floors, a lag probe.

- ``videopoll.bench.noop``: an empty task that re-publishes itself (Celery's own cost per turn)
- ``videopoll.bench.get``: the same plus one GET of the fake provider's status route
- a ``task_prerun`` hook that notes, for each ``videopoll.poll_job``, how late it starts
  against the ETA its message was planned for (schedule lag)
- remote-control commands (``bench_floor``, ``bench_lags``) the benchmark calls to stop the
  floor chains and collect the lags, so the probe adds no Redis traffic of its own.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any

import requests
from celery.signals import task_prerun
from celery.worker.control import control_command

from videopoll.celery_app import app

_running = threading.Event()
_running.set()
_lags: list[float] = []
_http = requests.Session()


@app.task(name="videopoll.bench.noop", ignore_result=True)  # type: ignore[untyped-decorator]
def noop(n: int, countdown: float) -> None:
    if _running.is_set():
        noop.apply_async((n, countdown), countdown=countdown)


@app.task(name="videopoll.bench.get", ignore_result=True)  # type: ignore[untyped-decorator]
def get(n: int, countdown: float, url: str) -> None:
    _http.get(url, params={"taskId": f"veo_never_floor{n}"}, timeout=10)
    if _running.is_set():
        get.apply_async((n, countdown, url), countdown=countdown)


@task_prerun.connect  # type: ignore[untyped-decorator]
def _note_lag(task: Any = None, **_: Any) -> None:
    if task is None or task.name != "videopoll.poll_job":
        return
    eta = task.request.eta
    if eta:
        _lags.append(time.time() - datetime.fromisoformat(eta).timestamp())


@control_command(args=[("running", bool)], signature="<running>")  # type: ignore[untyped-decorator]
def bench_floor(state: Any, running: bool = True) -> dict[str, bool]:
    """Start or stop the floor chains (they stop re-publishing themselves)."""
    if running:
        _running.set()
    else:
        _running.clear()
    return {"running": running}


@control_command()  # type: ignore[untyped-decorator]
def bench_lags(state: Any) -> dict[str, list[int]]:
    """Hand over (and forget) the lags noted so far, in milliseconds."""
    taken = _lags[:]
    del _lags[:len(taken)]
    return {"lags_ms": [round(lag * 1000) for lag in taken]}
