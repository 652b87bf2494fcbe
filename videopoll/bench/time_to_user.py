"""Figure 4: from the provider turning a job to success until the user is told.

One stack (API, worker, beat) with ``PUBLIC_BASE_URL`` set, against the fake provider run in
this process so the moment each task turns successful is known exactly (its ``finished`` set
notes the time). Two kinds of job, each telling the caller through its ``callbackUrl`` (a
listener here notes the arrival):

- polling only: ``/webhook/poll-video`` jobs (somebody else's task: no push callback); the
  benchmark turns each task successful at a random moment, the next poll finds it
- push callback: ``/jobs`` generations; the fake turns the task successful one second after
  the submit and calls ``/callbacks/kie_veo`` (signed, as KIE signs), which wakes the poll

The poll interval is scaled down to ``POLL_INTERVAL`` seconds (at 60 s the polling-only
figure is simply half a minute on average).
"""

from __future__ import annotations

import json
import random
import statistics
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

from videopoll.bench.procs import processes
from videopoll.bench.report import Row, below
from videopoll.fake_provider import start_in_thread
from videopoll.local_redis import free_port

POLL_INTERVAL = 5.0
JOBS = 10
HMAC_KEY = "bench-webhook-key"


class _TimedSet(set[str]):
    """The fake's set of finished tasks, noting when each joined."""

    def __init__(self) -> None:
        super().__init__()
        self.at: dict[str, float] = {}

    def add(self, task_id: str) -> None:
        self.at.setdefault(task_id, time.time())
        super().add(task_id)


class _Arrivals:
    """A listener for the jobs' ``callbackUrl``: job id → when its final callback came."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        arrivals = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"] or 0)))
                arrivals.at.setdefault(body["data"]["jobId"], time.time())
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/done"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def measure(redis_url: str, workdir: Path) -> tuple[list[Row], dict[str, object]]:
    fake = start_in_thread()
    finished = _TimedSet()
    fake.state.finished = finished
    fake.state.webhook_key = HMAC_KEY
    arrivals = _Arrivals()
    port = free_port()
    env = {"REDIS_URL": redis_url, "KIE_BASE_URL": fake.base_url, "KIE_API_KEY": "bench",
           "KIE_WEBHOOK_HMAC_KEY": HMAC_KEY, "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
           "POLL_INTERVAL_SECONDS": str(POLL_INTERVAL), "ALLOW_PRIVATE_URLS": "true",
           "STORAGE_URL": (workdir / "videos").as_uri()}
    try:
        with processes(env, workdir) as tree:
            _, api = tree.gunicorn("web", "videopoll.api:create_app()", port=port)
            tree.worker("worker")
            tree.beat()
            polled = _polling_only(api, arrivals.url, finished)
            pushed = _pushed(api, arrivals.url)
            deadline = time.monotonic() + 4 * POLL_INTERVAL + 30
            wanted = set(polled) | set(pushed)
            while time.monotonic() < deadline and not wanted <= set(arrivals.at):
                time.sleep(0.1)
    finally:
        arrivals.stop()
        fake.stop()
    took = {kind: sorted(arrivals.at[job] - finished.at[task]
                         for job, task in jobs.items()
                         if job in arrivals.at and task in finished.at)
            for kind, jobs in (("polling", polled), ("push", pushed))}
    missing = {kind: JOBS - len(values) for kind, values in took.items()}
    if any(missing.values()):
        raise RuntimeError(f"jobs never reached the user: {missing}")
    rows = [
        Row("time to user", "polling only p50", statistics.median(took["polling"]), "s",
            note=f"poll interval scaled to {POLL_INTERVAL:g} s, {JOBS} jobs each"),
        Row("time to user", "push callback p50", statistics.median(took["push"]), "s",
            statistics.median(took["polling"]), "polling only", "< 1 s", below(1.0)),
        Row("time to user", "push callback max", took["push"][-1], "s"),
    ]
    return rows, {k: [round(v, 3) for v in values] for k, values in took.items()}


def _polling_only(api: str, callback: str, finished: _TimedSet) -> dict[str, str]:
    """Jobs on tasks that turn successful at a random moment; job id → task id."""
    jobs: dict[str, str] = {}
    for _ in range(JOBS):
        task = f"veo_ok1000_{uuid.uuid4().hex[:10]}"
        answer = requests.post(f"{api}/webhook/poll-video", timeout=10, json={
            "sessionId": "bench", "taskId": task, "model": "veo3", "callbackUrl": callback})
        answer.raise_for_status()
        jobs[answer.json()["jobId"]] = task
        when = random.uniform(1.0, 1.0 + POLL_INTERVAL)
        threading.Timer(when, finished.add, (task,)).start()
    return jobs


def _pushed(api: str, callback: str) -> dict[str, str]:
    """Generations the fake calls back about; job id → task id, once each task exists."""
    ids = []
    for _ in range(JOBS):
        answer = requests.post(f"{api}/jobs", timeout=10, json={
            "sessionId": "bench", "model": "veo3", "callbackUrl": callback,
            "prompt": f"a paper boat ok1000 {uuid.uuid4().hex[:8]}"})
        answer.raise_for_status()
        ids.append(answer.json()["jobId"])
    jobs: dict[str, str] = {}
    deadline = time.monotonic() + 30
    while len(jobs) < len(ids) and time.monotonic() < deadline:
        for job_id in ids:
            if job_id not in jobs:
                task = requests.get(f"{api}/jobs/{job_id}", timeout=10).json().get(
                    "providerTaskId")
                if task:
                    jobs[job_id] = task
        time.sleep(0.1)
    return jobs
