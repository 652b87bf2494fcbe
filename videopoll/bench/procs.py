"""The real processes a figure runs: gunicorn, Celery workers and beat, the fake provider.

Each is started as the Procfile starts it (same configuration module, pool and concurrency),
in its own session so that stopping it stops its children, with its output in the run's
folder. ``/proc`` gives each one's CPU time and memory, read from outside without touching
the process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from videopoll.local_redis import free_port

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]
CLK_TCK = os.sysconf("SC_CLK_TCK")
# The Procfile's settings, kept in one place for every figure.
GUNICORN_WORKERS = "2"
WORKER_POOL = ["--pool", "threads", "--concurrency", "8"]


class Proc:
    """One started process: its handle, its log, and what /proc says about it."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], workdir: Path) -> None:
        self.name = name
        self.log_path = workdir / f"{name}.log"
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(argv, cwd=REPO, env=env, stdout=log, stderr=log,
                                          start_new_session=True)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def cpu_seconds(self) -> float:
        """User plus system CPU of the process (all its threads) so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def memory(self, field: str = "VmRSS") -> int:
        """Resident bytes now (``VmRSS``) or at the peak (``VmHWM``)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        return 0

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.pid, signal.SIGKILL)
            self.popen.wait()


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what}")


def answers(url: str) -> bool:
    try:
        requests.get(url, timeout=1)
        return True
    except requests.RequestException:
        return False


class Processes:
    """The process tree of one figure; ``stop`` ends all of them, newest first."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.env = {**os.environ, "PYTHONPATH": str(REPO), **env}
        self.workdir = workdir
        self.procs: list[Proc] = []

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Proc:
        proc = Proc(name, argv, {**self.env, **(env or {})}, self.workdir)
        self.procs.append(proc)
        return proc

    def gunicorn(self, name: str, app: str, port: int | None = None) -> tuple[Proc, str]:
        """An API (or the bare floor route) under gunicorn, as the Procfile's ``web`` line
        (its workers' metrics in files of their own, which ``/metrics`` adds up)."""
        port = port or free_port()
        metrics = self.workdir / f"prometheus-{name}-{port}"
        proc = self.spawn(name, [str(BIN / "gunicorn"), "-c", "python:videopoll.gunicorn_conf",
                                 "--workers", GUNICORN_WORKERS, "--bind", f"127.0.0.1:{port}",
                                 app], env={"PROMETHEUS_MULTIPROC_DIR": str(metrics)})
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: answers(url), 30, f"{name} to answer")
        return proc, url

    def worker(self, name: str, include: str | None = None) -> Proc:
        """A Celery worker with the Procfile's pool, consuming both queues."""
        argv = [str(BIN / "celery"), "-A", "videopoll.celery_app", "worker",
                "-Q", "videopoll,videopoll-sweep", *WORKER_POOL, "--loglevel", "INFO",
                "--hostname", f"{name}@%h"]
        if include:
            argv += ["--include", include]
        proc = self.spawn(name, argv)
        wait_until(lambda: " ready." in proc.log(), 60, f"{name} ready")
        return proc

    def beat(self) -> Proc:
        return self.spawn("beat", [str(BIN / "celery"), "-A", "videopoll.celery_app", "beat",
                                   "--loglevel", "INFO"])

    def fake_provider(self) -> tuple[Proc, str]:
        """The fake provider as its own process (``videopoll fake-provider``)."""
        port = free_port()
        proc = self.spawn("fake", [str(BIN / "videopoll"), "fake-provider", "--port", str(port)])
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: answers(url + "/_fake/stats"), 30, "fake provider")
        return proc, url

    def moto(self) -> str:
        """moto's standalone S3 server (the Procfile's ``s3`` line)."""
        port = free_port()
        self.spawn("s3", [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)])
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: answers(url), 30, "moto_server")
        return url

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()


@contextmanager
def processes(env: dict[str, str], workdir: Path) -> Iterator[Processes]:
    tree = Processes(env, workdir)
    try:
        yield tree
    finally:
        tree.stop()
