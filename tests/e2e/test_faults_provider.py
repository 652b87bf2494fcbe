"""A hostile network between the workers and the provider: refused, slow, cut, garbled.

The fake provider plays the KIE scenarios (``ok2``: two "generating" answers, then a video);
``Hostile`` stands between it and the workers and breaks what the task id asks for, for the
first N requests of that task (``_x<fault><N>``; N = 0: every request). Faults the fake plays
itself (HTTP 500, HTML 502, garbage, 429, a 404 result URL) are in test_flows/test_delivery.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.e2e.reliability import record
from tests.e2e.stack import Stack
from videopoll.fake_provider import FakeProvider

pytestmark = pytest.mark.faults

FAULT = re.compile(r"_x(trunc|huge|slow|reset|storm|cut|expired)(\d+)")
TIMEOUT = 1.0  # PROVIDER_TIMEOUT_SECONDS of this stack; "slow" answers after twice that


class Hostile:
    """An HTTP relay to the fake provider that injects the fault its task id names."""

    def __init__(self, fake: FakeProvider) -> None:
        self.fake = fake
        self.calls: Counter[tuple[str, str]] = Counter()  # (task, "status" | "download")
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None
        hostile = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                hostile.handle(self)

            def do_POST(self) -> None:
                hostile.handle(self)

            def log_message(self, *_: Any) -> None:
                pass

        self.handler = Handler
        probe = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(probe.server_address[1])
        probe.server_close()  # nothing listens until open(): connections are refused

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def open(self) -> Hostile:
        if self.server is None:
            self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self.handler)
            self.server.daemon_threads = True
            threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def handle(self, req: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(req.path)
        download = parts.path.startswith("/files/")
        task = (parts.path.rsplit("/", 1)[-1].removesuffix(".mp4") if download
                else parse_qs(parts.query).get("taskId", [""])[0])
        kind = "download" if download else "status"
        with self.lock:
            self.calls[(task, kind)] += 1
            n = self.calls[(task, kind)]
        fault = FAULT.search(task)
        broken = fault is not None and (int(fault.group(2)) == 0 or n <= int(fault.group(2)))
        name = fault.group(1) if fault and broken else ""
        length = int(req.headers.get("Content-Length") or 0)
        body = req.rfile.read(length) if length else None
        if name == "reset" and not download:
            req.close_connection = True
            req.connection.close()  # the request read, no answer at all
            return
        if name == "slow" and not download:
            time.sleep(TIMEOUT * 2)
        if name == "storm" and not download:
            return self._send(req, 503, b"<html><body><h1>503 Service Unavailable</h1>",
                              "text/html")
        if name == "expired" and download:
            return self._send(req, 403, b"<?xml version='1.0'?><Error><Code>AccessDenied"
                              b"</Code><Message>Request has expired</Message></Error>",
                              "application/xml")
        upstream = requests.request(req.command, self.fake.base_url + req.path, data=body,
                                    headers={k: v for k, v in req.headers.items()
                                             if k.lower() not in ("host", "content-length")},
                                    timeout=10)
        content = upstream.content.replace(self.fake.base_url.encode(), self.url.encode())
        ctype = upstream.headers.get("Content-Type", "application/json")
        if name == "huge" and not download:
            content = content[:-1] + b', "padding": "' + b"x" * (3 * 1024 * 1024) + b'"}'
        if name in ("trunc", "cut"):  # the promised length, half the bytes, then a hang-up
            req.send_response(upstream.status_code)
            req.send_header("Content-Type", ctype)
            req.send_header("Content-Length", str(len(content)))
            req.end_headers()
            req.wfile.write(content[: len(content) // 2])
            req.wfile.flush()
            req.close_connection = True
            req.connection.close()
            return
        self._send(req, upstream.status_code, content, ctype)

    @staticmethod
    def _send(req: BaseHTTPRequestHandler, status: int, body: bytes, ctype: str) -> None:
        req.send_response(status)
        req.send_header("Content-Type", ctype)
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body)


@pytest.fixture(scope="module")
def hostile(fake: FakeProvider) -> Iterator[Hostile]:
    relay = Hostile(fake)
    yield relay
    relay.close()


@pytest.fixture(scope="module")
def behind(make_stack: Callable[..., Stack], hostile: Hostile) -> Stack:
    """A stack whose provider is reached only through ``hostile`` (closed at first)."""
    return make_stack(KIE_BASE_URL=hostile.url, PROVIDER_TIMEOUT_SECONDS=str(TIMEOUT),
                      MAX_ATTEMPTS="6", JOB_DEADLINE_SECONDS="12",
                      DELAYED_INTERVAL_SECONDS="0.5", DOWNLOAD_TIMEOUT_SECONDS="5")


def submit(stack: Stack, task: str) -> str:
    resp = stack.post("/webhook/poll-video", {"sessionId": "h", "taskId": task, "model": "veo3"})
    assert resp.status_code == 202, resp.text
    job_id: str = resp.json()["jobId"]
    return job_id


def run_broken(stack: Stack, hostile: Hostile, fault: str, timeout: float = 30
               ) -> tuple[str, str, dict[str, Any]]:
    """One ``ok2`` job whose provider traffic is broken by ``fault``: (task, job id, end)."""
    hostile.open()
    task = f"veo_ok2_{uuid.uuid4().hex[:8]}_x{fault}"
    job = submit(stack, task)
    return task, job, stack.wait_terminal(job, timeout)


def told(stack: Stack, job_id: str) -> list[str]:
    return [line for line in stack.notifications() if job_id in line]


def test_provider_refusing_connections_then_back(behind: Stack, hostile: Hostile) -> None:
    tasks = [f"veo_ok2_{uuid.uuid4().hex[:8]}" for _ in range(3)]
    jobs = [submit(behind, t) for t in tasks]
    time.sleep(2.0)  # ten poll intervals against a closed port
    assert {behind.job(j)["status"] for j in jobs} <= {"queued", "delayed"}  # still polled
    hostile.open()
    opened = time.monotonic()
    ends = [behind.wait_terminal(j, 30) for j in jobs]
    recovered = time.monotonic() - opened
    assert [v["status"] for v in ends] == ["succeeded"] * 3, ends
    refused_attempts = [v["attempts"] - hostile.calls[(t, "status")]
                        for v, t in zip(ends, tasks, strict=True)]
    record("provider refuses connections, then is back",
           "3 jobs polled against a closed port for 2 s (10 intervals), then the provider "
           "listens again", {"jobs lost": 0, "duplicates": 0,
                             "refused polls counted as attempts": sum(refused_attempts),
                             "all done after it is back (s)": round(recovered, 1)})


# (fault, provider calls until success). The relay forwards "trunc", "huge" and "slow" to
# the fake, whose script moves on, so breaking the first three answers breaks the success
# too: only a job that refused all three polls a fourth time. "reset" never reaches the fake.
@pytest.mark.parametrize(("fault", "calls"),
                         [("trunc3", 4), ("huge3", 4), ("slow1", 4), ("reset2", 5)])
def test_a_broken_answer_is_a_transient_error_and_the_job_still_succeeds(
    behind: Stack, hostile: Hostile, fault: str, calls: int
) -> None:
    task, job, view = run_broken(behind, hostile, fault)
    assert view["status"] == "succeeded", view
    # one provider call per attempt: a broken answer is an attempt, never a silent re-call
    assert view["attempts"] == hostile.calls[(task, "status")] == calls
    behind.wait_until(lambda: len(told(behind, job)) == 1, 10, "one message")
    record(f"provider answer broken: {fault[:-1]} (first {fault[-1]})",
           {"trunc": "status answers cut to half their Content-Length, then the connection "
                     "closed", "huge": "a 3 MiB status answer (over the 2 MiB cap)",
            "slow": f"a status answer after {TIMEOUT * 2:.0f} s (the client timeout is "
                    f"{TIMEOUT:.0f} s)",
            "reset": "the connection closed after the request, no answer"}[fault[:-1]],
           {"jobs lost": 0, "duplicates": 0, "provider calls": view["attempts"],
            "attempts": view["attempts"], "outcome": "succeeded"})


def test_a_5xx_storm_ends_failed_at_the_deadline_with_one_message(
    behind: Stack, hostile: Hostile
) -> None:
    task, job, view = run_broken(behind, hostile, "storm0", 40)
    assert (view["status"], view["errorCode"]) == ("failed", "provider_timeout"), view
    assert view["message"] == "The provider did not return a result in time."
    behind.wait_until(lambda: len(told(behind, job)) == 2, 10, "delayed notice, then outcome")
    record("provider 5xx storm (HTML 503 on every poll)",
           "every status request answers an HTML 503 page; MAX_ATTEMPTS 6, deadline 12 s",
           {"jobs lost": 0, "duplicates": 0, "provider calls": hostile.calls[(task, "status")],
            "outcome": "failed provider_timeout at the deadline, user told (delayed + final)"})


def test_a_download_cut_mid_stream_is_fetched_again_and_stored_once(
    behind: Stack, hostile: Hostile
) -> None:
    task, job, view = run_broken(behind, hostile, "cut1")
    assert view["status"] == "succeeded", view
    assert requests.get(view["outputUrl"], timeout=10).content[4:8] == b"ftyp"
    assert hostile.calls[(task, "download")] == 2
    assert len(list((behind.workdir / "videos").rglob(f"{job}.mp4"))) == 1
    assert list((behind.workdir / "videos").rglob(".partial-*")) == []
    behind.wait_until(lambda: len(told(behind, job)) == 1, 10, "one message")
    record("download cut mid-stream", "the first download sends half the video and hangs up",
           {"jobs lost": 0, "duplicates": 0, "downloads": 2, "stored objects": 1,
            "partial files left": 0, "outcome": "succeeded"})


def test_an_expired_result_url_fails_with_a_clear_message(
    behind: Stack, hostile: Hostile
) -> None:
    task, job, view = run_broken(behind, hostile, "expired0")
    assert view["status"] == "failed" and view["errorCode"], view
    assert view["message"] and "error" not in view["message"].lower(), view
    behind.wait_until(lambda: len(told(behind, job)) == 1, 10, "one message")
    record("result URL expired (S3-style 403)",
           "the video URL answers 403 AccessDenied 'Request has expired'",
           {"jobs lost": 0, "duplicates": 0,
            "downloads": hostile.calls[(task, "download")],
            "outcome": f"failed {view['errorCode']}: {view['message']}"})
