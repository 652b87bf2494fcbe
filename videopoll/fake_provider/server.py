"""The fake provider server on 127.0.0.1 for the offline demo and the tests: every family.

Each family (``fake_provider/<family>.py``, listed in ``families.FAKES``) answers under its
own path prefix in the shapes of providers.md; KIE answers at the root. Every result URL
serves a real MP4 (``/files/<task>.mp4``), and ``/_fake/stats`` counts what the service did.
Standard library only, so it runs wherever the package does.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from videopoll.fake_provider.core import FakeFamily, FakeReply, FakeRequest, FakeState, reply
from videopoll.fake_provider.families import FAKES
from videopoll.fake_provider.scenarios import Scenario, parse_scenario
from videopoll.local_server import BackgroundServer, serve_until_stopped

log = logging.getLogger(__name__)
SAMPLE_MP4 = Path(__file__).with_name("sample.mp4")
MAX_BODY = 4 * 1024 * 1024


class Handler(BaseHTTPRequestHandler):
    """Answers over kept-alive HTTP/1.1 connections, as real provider APIs do.

    An HTTP/1.0 fake made every poll pay a TCP handshake and a new server thread, which no
    provider charges; the benchmark's polls/s and the client's connection reuse are only
    honest against a server that keeps the connection open. Every answer has a
    Content-Length, so a kept-alive connection always knows where an answer ends.
    """

    server: FakeServer
    protocol_version = "HTTP/1.1"
    # headers and body leave in two writes; with Nagle on, the body waits for the client's
    # delayed ACK of the headers (40 ms) on every kept-alive request
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        self.server.opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.closed(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)

    def _send(self, answer: FakeReply) -> None:
        if answer.delay:
            time.sleep(answer.delay)
        with contextlib.suppress(OSError):  # the caller may be gone (a slow reply)
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(answer.body)))
            for key, value in answer.headers.items():
                self.send_header(key, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(answer.body)

    def _request(self, method: str) -> FakeRequest:
        url = urlparse(self.path)
        declared = int(self.headers.get("Content-Length") or 0)
        length = min(declared, MAX_BODY)
        if declared > MAX_BODY or "Transfer-Encoding" in self.headers:
            # an unread rest (or a chunked body) would be parsed as the next request
            self.close_connection = True
        raw = self.rfile.read(length) if length else b""
        return FakeRequest(
            method=method, path=url.path,
            query={k: v[0] for k, v in parse_qs(url.query).items()},
            headers={k.lower(): v for k, v in self.headers.items()},
            raw=raw, base_url=self.server.base_url, server_url=self.server.base_url)

    def _dispatch(self, method: str) -> None:
        req = self._request(method)
        self._send(self.server.answer(req))

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, port: int, api_key: str | None) -> None:
        super().__init__((host, port), Handler)
        self.state = FakeState(api_key)
        self.base_url = f"http://{host}:{self.server_address[1]}"
        self.fakes: list[FakeFamily] = [cls(self.state) for cls in FAKES]
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def opened(self, conn: socket.socket) -> None:
        with self._open_lock:
            self._open.add(conn)

    def closed(self, conn: socket.socket) -> None:
        with self._open_lock:
            self._open.discard(conn)

    def server_close(self) -> None:
        """Also cut the kept-alive connections: a stopped provider must stop answering.

        Outage tests stop the server and expect the next poll to fail; without this, a
        client holding a kept-alive connection would still be answered by its handler thread.
        """
        super().server_close()
        with self._open_lock:
            conns = list(self._open)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def answer(self, req: FakeRequest) -> FakeReply:
        if req.path == "/_fake/stats":
            return reply(self.state.stats())
        if req.path == "/_fake/reset" and req.method == "POST":
            self.state.reset()
            return reply({"ok": True})
        if req.path.startswith("/files/") and req.method == "GET":
            return self._file(req.path[len("/files/"):])
        for fake in self.fakes:
            prefix = f"/{fake.prefix}" if fake.prefix else ""
            if fake.prefix and not req.path.startswith(prefix + "/"):
                continue
            req.path, req.base_url = req.path[len(prefix):], fake.base_url(self.base_url)
            answer = fake.handle(req)
            if answer is not None:
                return answer
            req.path = prefix + req.path
        return reply({"code": 404, "msg": "not found", "data": None}, status=404)

    def _file(self, name: str) -> FakeReply:
        task_id = name.rsplit(".", 1)[0]
        with self.state.lock:
            self.state.downloads[task_id] = self.state.downloads.get(task_id, 0) + 1
        if parse_scenario(task_id).name == "gone":  # an expired result link
            return FakeReply(404, b"<Error><Code>NoSuchKey</Code></Error>", "application/xml")
        return FakeReply(200, SAMPLE_MP4.read_bytes(), "video/mp4")

    def fake(self, config_name: str) -> FakeFamily:
        return next(f for f in self.fakes if f.config_name == config_name)

    def provider_settings(self) -> dict[str, dict[str, Any]]:
        """``Settings.providers`` that point every family at this server."""
        return {f.config_name: f.config(self.base_url) for f in self.fakes}


def provider_env(settings: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The same as environment variables (``OPENAI_BASE_URL``, …), for the stack's processes."""
    env: dict[str, str] = {}
    for name, fields in settings.items():
        for key, value in fields.items():
            if value is not None:
                env[f"{name.upper()}_{key.upper()}"] = (value if isinstance(value, str)
                                                        else json.dumps(value))
    return env


def fake_env(server_url: str) -> dict[str, str]:
    """Environment that points every family at a fake server running at ``server_url`` (in
    another process: the demo's Procfile line, the e2e stacks)."""
    state = FakeState(None)
    return provider_env({f.config_name: f.config(server_url) for f in
                         (cls(state) for cls in FAKES)})


class FakeProvider(BackgroundServer):
    """The fake server running in a background thread (tests, the demo)."""

    def __init__(self, server: FakeServer) -> None:
        super().__init__(server, "fake-provider")
        self.server = server

    @property
    def state(self) -> FakeState:
        return self.server.state

    def stats(self) -> dict[str, Any]:
        return self.server.state.stats()

    def reset(self) -> None:
        self.server.state.reset()

    def provider_settings(self) -> dict[str, dict[str, Any]]:
        return self.server.provider_settings()

    def fake(self, config_name: str) -> FakeFamily:
        return self.server.fake(config_name)


def start_in_thread(host: str = "127.0.0.1", port: int = 0,
                    api_key: str | None = None) -> FakeProvider:
    return FakeProvider(FakeServer(host, port, api_key))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="videopoll fake-provider")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--webhook-key", default=None, help="sign callbacks (KIE webhookHmacKey)")
    args = parser.parse_args(argv)
    server = FakeServer(args.host, args.port, args.api_key)
    server.state.webhook_key = args.webhook_key
    return serve_until_stopped(server, f"fake video providers on {server.base_url}")


__all__ = ["FakeProvider", "Scenario", "fake_env", "main", "provider_env", "start_in_thread"]
