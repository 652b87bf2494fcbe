"""A real HTTP listener on 127.0.0.1 that records what it is sent (callbacks, Slack…)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Listener:
    statuses: list[int] = field(default_factory=list)  # answered in turn, then 200
    received: list[Received] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    bodies: list[bytes] = field(default_factory=list)  # answered in turn, then b"ok"

    def __post_init__(self) -> None:
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                listener.received.append(Received(self.path, dict(self.headers.items()),
                                                  self.rfile.read(length)))
                status = listener.statuses.pop(0) if listener.statuses else 200
                self.send_response(status)
                for k, v in listener.headers.items():
                    self.send_header(k, v)
                if 300 <= status < 400 and "Location" not in listener.headers:
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                body = listener.bodies.pop(0) if listener.bodies else b"ok"
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def reset(self) -> None:
        """Forget what was received and scripted (a server shared by a module's tests)."""
        for recorded in (self.statuses, self.received, self.bodies):
            recorded.clear()
        self.headers.clear()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
