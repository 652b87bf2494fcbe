"""A Telegram Bot API look-alike on 127.0.0.1, for the offline demo and the tests.

It answers ``/bot<token>/<method>`` the way the real Bot API does (``{"ok": true, "result":
…}`` or ``{"ok": false, "error_code", "description", "parameters"}``), records every call at
``GET /_fake/calls``, and plays scripted failures queued with ``POST /_fake/script``
(``{"method": "sendVideo", "answers": [{"error_code": 429, "retry_after": 1}, …]}``), so the
real pyTelegramBotAPI client code is exercised over real HTTP. Standard library only.
"""

from __future__ import annotations

import argparse
import email.parser
import email.policy
import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from videopoll.local_server import BackgroundServer, serve_until_stopped

log = logging.getLogger(__name__)

DESCRIPTIONS = {
    400: "Bad Request: chat not found",
    403: "Forbidden: bot was blocked by the user",
    429: "Too Many Requests: retry after {retry_after}",
    500: "Internal Server Error",
    502: "Bad Gateway",
}


class TelegramState:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[dict[str, Any]] = []
        self.script: dict[str, list[dict[str, Any]]] = {}
        self.next_message_id = 1000

    def record(self, call: dict[str, Any]) -> None:
        with self.lock:
            self.calls.append(call)

    def scripted(self, method: str) -> dict[str, Any] | None:
        with self.lock:
            queue = self.script.get(method) or self.script.get("*")
            return queue.pop(0) if queue else None

    def message_id(self) -> int:
        with self.lock:
            self.next_message_id += 1
            return self.next_message_id


def _fields(content_type: str, body: bytes) -> dict[str, Any]:
    """Form fields of a JSON, urlencoded or multipart body; uploaded files as their size."""
    if content_type.startswith("application/json"):
        data = json.loads(body or b"{}")
        return data if isinstance(data, dict) else {}
    if content_type.startswith("multipart/form-data"):
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + body)
        fields: dict[str, Any] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            raw = part.get_payload(decode=True)
            payload = raw if isinstance(raw, bytes) else b""
            if part.get_filename():
                fields[str(name)] = {"file_size": len(payload), "head": payload[4:8].decode(
                    "latin-1")}
            else:
                fields[str(name)] = payload.decode("utf-8", "replace")
        return fields
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}


class Handler(BaseHTTPRequestHandler):
    server: FakeTelegramServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)

    def _json(self, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        url = urlparse(self.path)
        if url.path == "/_fake/calls":
            with self.server.state.lock:
                return self._json(200, list(self.server.state.calls))
        self._method(url.path, _query(url.query))

    def do_POST(self) -> None:
        url = urlparse(self.path)
        path = url.path
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if path == "/_fake/script":
            spec = json.loads(body)
            with self.server.state.lock:
                self.server.state.script.setdefault(spec["method"], []).extend(spec["answers"])
            return self._json(200, {"ok": True})
        if path == "/_fake/reset":
            with self.server.state.lock:
                self.server.state.calls.clear()
                self.server.state.script.clear()
            return self._json(200, {"ok": True})
        # pyTelegramBotAPI sends parameters in the query string and files as multipart
        fields = {**_query(url.query), **_fields(self.headers.get("Content-Type", ""), body)}
        self._method(path, fields)

    def _method(self, path: str, fields: dict[str, Any] | None = None) -> None:
        parts = path.strip("/").split("/")
        if len(parts) != 2 or not parts[0].startswith("bot") or ":" not in parts[0]:
            return self._json(404, {"ok": False, "error_code": 404, "description": "Not Found"})
        token, method = parts[0][3:], parts[1]
        fields = fields or {}
        state = self.server.state
        answer = state.scripted(method)
        call = {"method": method, "token_tail": token[-4:], "at": time.time(), **fields}
        if answer is not None:
            call["answered"] = answer.get("error_code", 200)
        state.record(call)
        if answer is not None and answer.get("error_code"):
            code = int(answer["error_code"])
            retry = answer.get("retry_after", 1)
            failure: dict[str, Any] = {
                "ok": False, "error_code": code,
                "description": answer.get("description")
                or DESCRIPTIONS.get(code, "Error").format(retry_after=retry)}
            if code == 429:
                failure["parameters"] = {"retry_after": retry}
            return self._json(code, failure)
        self._json(200, {"ok": True, "result": self._result(method, fields)})

    def _result(self, method: str, fields: dict[str, Any]) -> Any:
        chat = {"id": _int(fields.get("chat_id")), "type": "private"}
        message = {"message_id": self.server.state.message_id(), "date": int(time.time()),
                   "chat": chat}
        if method == "getMe":
            return {"id": 1, "is_bot": True, "first_name": "videopoll", "username": "fake_bot"}
        if method in ("answerCallbackQuery", "deleteMessage", "setWebhook"):
            return True
        if method == "sendVideo":
            message["video"] = {"file_id": "fake-file", "file_unique_id": "u", "width": 0,
                                "height": 0, "duration": 0}
            if fields.get("caption"):
                message["caption"] = fields["caption"]
        if method in ("sendMessage", "editMessageText"):
            message["text"] = fields.get("text", "")
        return message


def _query(query: str) -> dict[str, Any]:
    return {k: v[0] for k, v in parse_qs(query).items()}


def _int(value: Any) -> int | str:
    try:
        return int(value)
    except (TypeError, ValueError):
        return str(value)


class FakeTelegramServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, port: int) -> None:
        super().__init__((host, port), Handler)
        self.state = TelegramState()
        self.base_url = f"http://{host}:{self.server_address[1]}"


class FakeTelegram(BackgroundServer):
    """The fake Bot API in a background thread (tests, the demo)."""

    def __init__(self, server: FakeTelegramServer) -> None:
        super().__init__(server, "fake-telegram")
        self.server = server

    def calls(self, method: str | None = None) -> list[dict[str, Any]]:
        with self.server.state.lock:
            return [c for c in self.server.state.calls if method in (None, c["method"])]

    def script(self, method: str, *answers: dict[str, Any]) -> None:
        with self.server.state.lock:
            self.server.state.script.setdefault(method, []).extend(answers)

    def reset(self) -> None:
        with self.server.state.lock:
            self.server.state.calls.clear()
            self.server.state.script.clear()


def start_in_thread(host: str = "127.0.0.1", port: int = 0) -> FakeTelegram:
    return FakeTelegram(FakeTelegramServer(host, port))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m videopoll.fake_telegram")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args(argv)
    server = FakeTelegramServer(args.host, args.port)
    return serve_until_stopped(server, f"fake Telegram Bot API on {server.base_url}")
