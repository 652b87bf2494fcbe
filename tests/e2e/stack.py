"""The whole stack as real processes: gunicorn API, Celery worker, Celery beat."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]
TERMINAL = {"succeeded", "failed", "canceled"}


class Stack:
    def __init__(self, env: dict[str, str], workdir: Path, api_port: int) -> None:
        self.env = env
        self.workdir = workdir
        self.api = f"http://127.0.0.1:{api_port}"
        self.api_port = api_port
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.worker_runs = 0

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - lives with the process
        proc = subprocess.Popen(argv, cwd=REPO, env=self.env, stdout=log, stderr=log,
                                start_new_session=True)
        self.procs[name] = proc
        return proc

    def start(self) -> Stack:
        self._spawn("api", [str(BIN / "gunicorn"), "-c", "python:videopoll.gunicorn_conf",
                            "--workers", "1", "--bind", f"127.0.0.1:{self.api_port}",
                            "videopoll.api:create_app()"])
        self.start_worker()
        self.start_beat()
        self.wait_until(lambda: self._healthy(), 30, "API healthy")
        return self

    def start_beat(self, name: str = "beat") -> subprocess.Popen[bytes]:
        """Start a beat as the Procfile does (no schedule file: the scheduler needs none)."""
        return self._spawn(name, [str(BIN / "celery"), "-A", "videopoll.celery_app", "beat",
                                  "--loglevel", "INFO"])

    def start_worker(self) -> None:
        self.worker_runs += 1
        name = f"worker{self.worker_runs}"
        self._spawn(name, [str(BIN / "celery"), "-A", "videopoll.celery_app", "worker",
                           "--pool", "threads", "--concurrency", "8", "--loglevel", "INFO",
                           "-Q", "videopoll,videopoll-sweep",
                           "--without-gossip", "--without-mingle", "--without-heartbeat",
                           "--hostname", f"{name}@%h"])
        self.wait_until(lambda: " ready." in self.log(name), 30, f"{name} ready")

    def stop_process(self, name: str, sig: signal.Signals = signal.SIGTERM,
                     timeout: float = 30) -> int:
        """Signal one process of the stack and wait for it to exit; return its exit code."""
        proc = self.procs[name]
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
        return proc.wait(timeout=timeout)

    def received(self, task: str) -> int:
        """How many ``task`` messages all worker runs so far received (expired ones too)."""
        return self._task_lines(task, " received")

    def ran(self, task: str) -> int:
        """How many ``task`` runs all worker runs so far finished (expired messages never run)."""
        return self._task_lines(task, " succeeded in ")

    def _task_lines(self, task: str, what: str) -> int:
        return sum(1 for run in range(1, self.worker_runs + 1)
                   for line in self.log(f"worker{run}").splitlines()
                   if f"Task {task}[" in line and what in line)

    def kill_worker(self) -> None:
        proc = self.procs[f"worker{self.worker_runs}"]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def kill_workers(self) -> int:
        """SIGKILL every live worker at once (a host lost); how many there were."""
        live = [p for n, p in self.procs.items() if n.startswith("worker") and p.poll() is None]
        for proc in live:
            os.killpg(proc.pid, signal.SIGKILL)
        for proc in live:
            proc.wait()
        return len(live)

    def exited(self) -> dict[str, int | None]:
        """The processes of the stack that are no longer running, with their exit codes."""
        return {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def notifications(self) -> list[str]:
        """Every NOTIFY line any worker run printed (one per message sent to a user)."""
        lines: list[str] = []
        for run in range(1, self.worker_runs + 1):
            lines += [ln for ln in self.log(f"worker{run}").splitlines()
                      if ln.startswith("NOTIFY ")]
        return lines

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def _healthy(self) -> bool:
        try:
            return requests.get(f"{self.api}/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    @staticmethod
    def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")

    # API helpers --------------------------------------------------------------------------
    def post(self, path: str, body: dict[str, Any], **kw: Any) -> requests.Response:
        return requests.post(f"{self.api}{path}", json=body, timeout=10, **kw)

    def job(self, job_id: str) -> dict[str, Any]:
        view: dict[str, Any] = requests.get(f"{self.api}/jobs/{job_id}", timeout=10).json()
        return view

    def wait_terminal(self, job_id: str, timeout: float = 60) -> dict[str, Any]:
        seen: list[dict[str, Any]] = []

        def done() -> bool:
            seen.append(self.job(job_id))
            return seen[-1]["status"] in TERMINAL

        self.wait_until(done, timeout, f"job {job_id} to finish (last: {seen[-1:]})")
        return seen[-1]

    def wait_status(self, job_id: str, status: str, timeout: float = 30) -> dict[str, Any]:
        seen: list[dict[str, Any]] = []

        def reached() -> bool:
            seen.append(self.job(job_id))
            return seen[-1]["status"] == status

        self.wait_until(reached, timeout, f"job {job_id} to be {status} (last: {seen[-1:]})")
        return seen[-1]
