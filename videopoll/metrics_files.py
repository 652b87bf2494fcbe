"""The multiprocess metrics folder's chores, for the gunicorn master: standard library only.

The master must not import prometheus_client (nor anything that imports ``ssl``): workers are
forked from it and patch ``ssl`` for gevent only after the fork, and an ``ssl`` imported before
that makes botocore's SSL context recurse until the worker dies (gevent's "patch ssl before it
is imported" rule). These do what prometheus_client's own multiprocess helpers do.
"""

from __future__ import annotations

from pathlib import Path


def prepare_multiproc_dir(path: str) -> None:
    """Create the folder and drop the files of an earlier run (their pids may be reused)."""
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink(missing_ok=True)


def process_exited(pid: int, path: str) -> None:
    """A gunicorn worker died: its live gauges go, its counters stay in the sums
    (``prometheus_client.multiprocess.mark_process_dead``)."""
    for live in Path(path).glob(f"gauge_live*_{pid}.db"):
        live.unlink(missing_ok=True)
