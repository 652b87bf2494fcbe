"""The API at its edges over real HTTP: a real gunicorn, slow sockets, and Redis servers that
the test itself freezes (SIGSTOP) and stops, to see what a caller is told during an outage.

Validation that needs no server is in ``tests/test_api.py``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.stack import Stack
from videopoll.local_redis import free_port

OK_TIMEOUT = 5.0  # the issue asks for ~2-3 s; the bound leaves room for a loaded machine


def n8n(session: str, scenario: str = "veo_ok2", **extra: Any) -> dict[str, Any]:
    task = f"{scenario}_{uuid.uuid4().hex[:8]}"
    return {"sessionId": session, "taskId": task, "model": "veo3", "attempt": 1, **extra}


def timed(call: Callable[[], requests.Response]) -> tuple[requests.Response, float]:
    started = time.monotonic()
    resp = call()
    return resp, time.monotonic() - started


# idempotency -----------------------------------------------------------------------------


def test_idempotency_key_is_scoped_to_caller_and_body(stack: Stack) -> None:
    key = {"Idempotency-Key": f"order-{uuid.uuid4().hex[:6]}"}
    alice = n8n("alice", metadata={"owner": "alice"})
    bob = n8n("bob", metadata={"owner": "bob"})

    first = stack.post("/webhook/poll-video", alice, headers=key)
    other = stack.post("/webhook/poll-video", bob, headers=key)
    assert (first.status_code, other.status_code) == (202, 202), other.text
    assert other.json()["jobId"] != first.json()["jobId"]
    assert stack.job(other.json()["jobId"])["metadata"] == {"owner": "bob"}

    again = stack.post("/webhook/poll-video", alice, headers=key)
    assert (again.status_code, again.json()["jobId"]) == (200, first.json()["jobId"])
    resumed = stack.post("/webhook/poll-video", {**alice, "attempt": 2}, headers=key)
    assert (resumed.status_code, resumed.json()["jobId"]) == (200, first.json()["jobId"])

    changed = stack.post("/webhook/poll-video", {**alice, "metadata": {"owner": "eve"}},
                         headers=key)
    assert changed.status_code == 422, changed.text
    assert changed.json()["details"] == [
        {"field": "Idempotency-Key", "reason": "was used with a different request body"}]

    generate = stack.post("/jobs", {"sessionId": "alice", "model": "veo3", "prompt": "x (ok1)"},
                          headers=key)
    assert generate.status_code == 202, generate.text  # another endpoint, another namespace


# caller-facing HTTP ----------------------------------------------------------------------


def test_chunked_body_over_the_cap_is_413(stack: Stack) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"sessionId": "u", "metadata": {"x": "'
        for _ in range(80):
            yield b"y" * 1024
        yield b'"}}'

    resp = requests.post(f"{stack.api}/webhook/poll-video", data=chunks(), timeout=10,
                         headers={"Content-Type": "application/json"})
    assert (resp.status_code, resp.json()["error"]) == (413, "payload_too_large")


def raw_http(stack: Stack, request: bytes) -> tuple[str, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", stack.api_port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines)}
    return status, headers, body


@pytest.mark.parametrize(
    ("request_bytes", "status", "error"),
    [
        (b"GET /jobs/" + b"x" * 5000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", "414", "uri_too_long"),
        (b"GET /healthz HTTP/1.1\r\nHost: a\r\n"
         + b"".join(b"X-H%d: v\r\n" % i for i in range(120)) + b"\r\n",
         "431", "request_header_fields_too_large"),
        (b"BR@KEN\r\n\r\n", "400", "bad_request"),
    ],
)
def test_errors_gunicorn_answers_itself_are_json(
    stack: Stack, request_bytes: bytes, status: str, error: str
) -> None:
    status_line, headers, body = raw_http(stack, request_bytes)
    assert status_line.split()[1] == status, status_line
    assert headers["content-type"] == "application/json"
    import json

    assert json.loads(body)["error"] == error


def test_a_body_cut_short_of_its_content_length_is_a_400_not_a_traceback(stack: Stack) -> None:
    """The caller declares 300 bytes, sends 40 and closes its side: the body is read from
    gunicorn's input directly, and its early end is the caller's error, said in JSON."""
    with socket.create_connection(("127.0.0.1", stack.api_port), timeout=10) as sock:
        sock.sendall(b"POST /webhook/poll-video HTTP/1.1\r\nHost: a\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 300\r\n\r\n"
                     b'{"sessionId": "s", "taskId": "veo_ok1_x"')
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.split()[1] == b"400", head
    import json

    assert json.loads(body)["error"] in ("bad_request", "malformed_json")
    assert "Traceback" not in stack.log("api")


def test_a_declared_length_over_the_cap_is_refused_before_its_body(stack: Stack) -> None:
    """413 at once: the server does not wait for 100 MB it would refuse anyway."""
    with socket.create_connection(("127.0.0.1", stack.api_port), timeout=10) as sock:
        sock.sendall(b"POST /webhook/poll-video HTTP/1.1\r\nHost: a\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n{")
        head = sock.recv(65536)
    assert head.split()[1] == b"413", head


def test_access_log_carries_no_query_string(stack: Stack) -> None:
    secret = uuid.uuid4().hex
    resp = requests.get(f"{stack.api}/jobs/job_nolog?token={secret}&x=1", timeout=10)
    assert resp.status_code == 404
    stack.wait_until(lambda: "/jobs/job_nolog" in stack.log("api"), 10, "the access log line")
    assert secret not in stack.log("api")


def test_slow_clients_do_not_starve_healthz(stack: Stack) -> None:
    """100 callers send headers and a few bytes of a 1,000-byte body, then stall."""
    head = (b"POST /webhook/poll-video HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n{\"sessionId\": ")
    slow = []
    try:
        for _ in range(100):
            sock = socket.create_connection(("127.0.0.1", stack.api_port), timeout=10)
            sock.sendall(head)
            slow.append(sock)
        time.sleep(1.0)  # every one of them is now parked in a body read
        latencies = []
        for _ in range(5):
            resp, took = timed(lambda: requests.get(f"{stack.api}/healthz", timeout=3))
            assert resp.status_code == 200
            latencies.append(took)
        print(f"\n/healthz with {len(slow)} slow clients held: max {max(latencies):.3f}s")
        assert max(latencies) < 1.0
        for sock in slow:  # still held, not dropped, while healthz answered
            sock.setblocking(False)
            with pytest.raises(BlockingIOError):
                sock.recv(1)
    finally:
        for sock in slow:
            sock.close()


# outages ---------------------------------------------------------------------------------


class RedisProcess:
    """A redis-server this test owns outright, so it may freeze and stop it."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed"
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        Stack.wait_until(self._up, 10, "redis-server")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _up(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def freeze(self) -> None:
        os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        self.thaw()
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[Callable[[], RedisProcess]]:
    servers: list[RedisProcess] = []

    def start() -> RedisProcess:
        servers.append(RedisProcess(tmp_path))
        return servers[-1]

    yield start
    for server in servers:
        if server.proc.poll() is None:
            server.stop()


def test_outages_answer_503_fast_and_never_lose_an_accepted_job(
    make_stack: Callable[..., Stack], own_redis: Callable[[], RedisProcess]
) -> None:
    store, broker = own_redis(), own_redis()
    stack = make_stack(REDIS_URL=store.url, BROKER_URL=broker.url)
    figures: dict[str, float] = {}

    # The broker freezes: the record is stored, so the job is accepted; the sweeper sends it.
    broker.freeze()
    accepted, figures["broker frozen → 202"] = timed(
        lambda: stack.post("/webhook/poll-video", n8n("s1")))
    broker.thaw()
    assert accepted.status_code == 202, accepted.text
    assert stack.wait_terminal(accepted.json()["jobId"])["status"] == "succeeded"

    # The store freezes: the write may land later, so the caller is told the outcome is unknown.
    body, key = n8n("s2"), {"Idempotency-Key": uuid.uuid4().hex}
    store.freeze()
    unknown, figures["store frozen → 503 (submit)"] = timed(
        lambda: stack.post("/webhook/poll-video", body, headers=key))
    read, figures["store frozen → 503 (read)"] = timed(
        lambda: requests.get(f"{stack.api}/jobs/{accepted.json()['jobId']}", timeout=10))
    store.thaw()
    for resp in (unknown, read):
        assert resp.status_code == 503, resp.text
        assert int(resp.headers["Retry-After"]) > 0
        assert resp.json()["error"] == "store_unavailable"
    assert "Idempotency-Key" in unknown.json()["message"]
    retried = stack.post("/webhook/poll-video", body, headers=key)
    assert retried.status_code in (200, 202), retried.text
    again = stack.post("/webhook/poll-video", body, headers=key)
    assert (again.status_code, again.json()["jobId"]) == (200, retried.json()["jobId"])

    # The store stops.
    store.stop()
    down, figures["store stopped → 503 (submit)"] = timed(
        lambda: stack.post("/webhook/poll-video", n8n("s3")))
    gone, figures["store stopped → 503 (read)"] = timed(
        lambda: requests.get(f"{stack.api}/jobs/{accepted.json()['jobId']}", timeout=10))
    for resp in (down, gone):
        assert resp.status_code == 503, resp.text
        assert "Retry-After" in resp.headers

    print("\n" + "\n".join(f"{k}: {v:.2f}s" for k, v in figures.items()))
    assert max(figures.values()) < OK_TIMEOUT, figures
