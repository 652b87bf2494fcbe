"""gunicorn settings for the API: ``gunicorn -c python:videopoll.gunicorn_conf …``.

Why gevent: a caller that sends its headers and then trickles the body holds whatever serves
it. With the threaded worker, eight such callers held all 2x4 threads and ``/healthz`` went
unanswered. A gevent worker parks each connection in a greenlet (``worker_connections`` of them
per process), so slow callers cost memory, not service; redis-py and kombu publish over
gevent's patched sockets. Bounds on a slow caller: its headers must arrive within
``keepalive`` seconds, each body read waits at most ``READ_TIMEOUT_SECONDS`` (then 408).

Fair turns: a keep-alive client whose next request is already buffered never makes its
greenlet wait, so it could be served again and again while other connections' requests sit
unread (the bare route under wrk showed p50 0.5 ms and p99 300 ms). Each request first
yields once (``gevent.sleep(0)``), so connections take turns: p99 20-30 ms for that route.

Metrics: with ``PROMETHEUS_MULTIPROC_DIR`` set, each worker process writes its values to files
there and ``/metrics`` adds them up; the master empties the folder at start (``on_starting``)
and marks each worker that exits (``child_exit``), as prometheus_client's multiprocess mode
asks, with ``metrics_files`` (standard library only: see there why).

Every answer gunicorn writes itself (414 URI too long, 431, 400 bad request line) is JSON
like the app's, and the access log names method and path only: never the query string
(``?token=…``) nor any header.
"""

from __future__ import annotations

import json
import socket
from typing import Any

# gevent and gunicorn ship no type hints
import gevent  # type: ignore[import-untyped]
from gunicorn import util  # type: ignore[import-untyped]
from gunicorn.workers.base_async import AsyncWorker  # type: ignore[import-untyped]
from gunicorn.workers.ggevent import GeventWorker  # type: ignore[import-untyped]

READ_TIMEOUT_SECONDS = 30.0

worker_class = "videopoll.gunicorn_conf.ApiWorker"
worker_connections = 1000
keepalive = 5
graceful_timeout = 10
accesslog = "-"
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'


def write_json_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's ``util.write_error``, answering JSON instead of an HTML page."""
    from videopoll.api.errors import ERROR_NAMES

    body = json.dumps({"error": ERROR_NAMES.get(status_int, "http_error"),
                       "message": mesg or reason}).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    util.write_nonblock(sock, head.encode("latin-1") + body)


def on_starting(server: Any) -> None:
    from videopoll.metrics_files import prepare_multiproc_dir
    from videopoll.settings import load_settings

    folder = load_settings().prometheus_multiproc_dir
    if folder:
        prepare_multiproc_dir(folder)


def child_exit(server: Any, worker: Any) -> None:
    from videopoll.metrics_files import process_exited
    from videopoll.settings import load_settings

    folder = load_settings().prometheus_multiproc_dir
    if folder:
        process_exited(worker.pid, folder)


class ApiWorker(GeventWorker):  # type: ignore[misc]
    """The gevent worker, with a read timeout on every client socket and JSON errors."""

    def init_process(self) -> None:
        # gunicorn's error path looks ``util.write_error`` up at call time: this worker
        # process answers its own protocol errors in JSON.
        util.write_error = write_json_error
        super().init_process()

    def handle_request(self, listener_name: Any, req: Any, sock: Any, addr: Any) -> bool:
        gevent.sleep(0)  # take turns with the other connections (module docstring)
        return bool(super().handle_request(listener_name, req, sock, addr))

    def handle(self, listener: Any, client: Any, addr: Any) -> None:
        client.settimeout(READ_TIMEOUT_SECONDS)  # GeventWorker.handle would make it blocking
        AsyncWorker.handle(self, listener, client, addr)
