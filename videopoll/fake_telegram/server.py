"""A Telegram Bot API look-alike on 127.0.0.1, for the offline demo and the tests.

It answers ``/bot<token>/<method>`` the way the real Bot API does (``{"ok": true, "result":
…}`` or ``{"ok": false, "error_code", "description", "parameters"}``; rules in ``botapi``),
records every call at ``GET /_fake/calls`` (``?method=sendVideo`` filters), and plays
scripted failures queued with ``POST /_fake/script``::

    {"method": "sendVideo", "chat_id": 7, "answers": [{"error_code": 429, "retry_after": 1}]}
    {"chat_id": 8, "answers": [{"error_code": 403, "forever": true}]}   # a blocked bot

``method`` defaults to every method, ``chat_id`` to every chat. Parameters may come in the
query string (as pyTelegramBotAPI sends them), JSON, a urlencoded form or multipart; an
uploaded file is recorded as its size and first bytes. Standard library only.
"""

from __future__ import annotations

import argparse
import email.parser
import email.policy
import json
import logging
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from videopoll.fake_telegram.botapi import UPLOAD_MAX_BYTES, BotState
from videopoll.local_server import BackgroundServer, serve_until_stopped

log = logging.getLogger(__name__)


def _multipart(content_type: str, body: bytes) -> dict[str, Any]:
    boundary = email.parser.HeaderParser(policy=email.policy.HTTP).parsestr(
        f"Content-Type: {content_type}\r\n\r\n").get_param("boundary")
    if not isinstance(boundary, str):
        return {}
    fields: dict[str, Any] = {}
    for raw in body.split(b"--" + boundary.encode())[1:]:
        head, sep, payload = raw.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not sep:
            continue  # the closing "--"
        headers = email.parser.BytesHeaderParser(policy=email.policy.HTTP).parsebytes(head)
        disposition = headers.get("content-disposition", "")
        params = dict(headers.get_params(header="content-disposition") or [])
        payload = payload.removesuffix(b"\r\n")
        if "filename" in params or "filename=" in disposition:
            fields[params.get("name", "file")] = {
                "file_size": len(payload), "file_name": params.get("filename", ""),
                "head": payload[4:8].decode("latin-1")}  # "ftyp" for an MP4
        else:
            fields[params.get("name", "")] = payload.decode("utf-8", "replace")
    return fields


def _fields(content_type: str, body: bytes) -> dict[str, Any]:
    """Form fields of a JSON, urlencoded or multipart body; uploaded files as their size."""
    if content_type.startswith("application/json"):
        data = json.loads(body or b"{}")
        return data if isinstance(data, dict) else {}
    if content_type.startswith("multipart/form-data"):
        return _multipart(content_type, body)
    return _query(body.decode("utf-8", "replace"))


def _query(query: str) -> dict[str, Any]:
    return {k: v[0] for k, v in parse_qs(query).items()}


class Handler(BaseHTTPRequestHandler):
    server: FakeTelegramServer
    protocol_version = "HTTP/1.1"  # keep-alive, as requests' sessions expect

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)

    def _json(self, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> bytes | None:
        """The request body, or ``None`` when the client hung up before sending all of it
        (Telegram drops such a request: nothing is recorded, nothing is sent)."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                out += self.rfile.read(size)
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return bytes(out)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        return body if len(body) == length else None

    def do_GET(self) -> None:
        url = urlparse(self.path)
        if url.path == "/_fake/calls":
            method = _query(url.query).get("method")
            return self._json(200, self.server.state.calls_of(method))
        self._method(url.path, _query(url.query))

    def do_POST(self) -> None:
        url = urlparse(self.path)
        body = self._body()
        if body is None:
            self.close_connection = True
            return
        state = self.server.state
        if url.path == "/_fake/script":
            spec = json.loads(body)
            state.add_script(spec.get("method", "*"), list(spec["answers"]),
                             spec.get("chat_id"))
            return self._json(200, {"ok": True})
        if url.path == "/_fake/reset":
            state.reset()
            return self._json(200, {"ok": True})
        # pyTelegramBotAPI sends parameters in the query string and files as multipart
        fields = {**_query(url.query), **_fields(self.headers.get("Content-Type", ""), body)}
        self._method(url.path, fields)

    def _method(self, path: str, fields: dict[str, Any]) -> None:
        parts = path.strip("/").split("/")
        if len(parts) != 2 or not parts[0].startswith("bot") or ":" not in parts[0]:
            return self._json(404, {"ok": False, "error_code": 404, "description": "Not Found"})
        status, answer = self.server.state.handle(parts[0][3:], parts[1], fields)
        self._json(status, answer)


class FakeTelegramServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, port: int, upload_max_bytes: int = UPLOAD_MAX_BYTES) -> None:
        super().__init__((host, port), Handler)
        self.state = BotState(upload_max_bytes)
        self.base_url = f"http://{host}:{self.server_address[1]}"


class FakeTelegram(BackgroundServer):
    """The fake Bot API in a background thread (tests, the demo)."""

    def __init__(self, server: FakeTelegramServer) -> None:
        super().__init__(server, "fake-telegram")
        self.server = server

    def calls(self, method: str | None = None) -> list[dict[str, Any]]:
        return self.server.state.calls_of(method)

    def script(self, method: str, *answers: dict[str, Any],
               chat_id: str | int | None = None) -> None:
        """Queue answers for ``method`` (``"*"``: any), for one chat or every chat."""
        self.server.state.add_script(method, list(answers), chat_id)

    def reset(self) -> None:
        self.server.state.reset()


def start_in_thread(host: str = "127.0.0.1", port: int = 0,
                    upload_max_bytes: int = UPLOAD_MAX_BYTES) -> FakeTelegram:
    return FakeTelegram(FakeTelegramServer(host, port, upload_max_bytes))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m videopoll.fake_telegram")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--upload-max-bytes", type=int, default=UPLOAD_MAX_BYTES)
    args = parser.parse_args(argv)
    server = FakeTelegramServer(args.host, args.port, args.upload_max_bytes)
    return serve_until_stopped(server, f"fake Telegram Bot API on {server.base_url}")
