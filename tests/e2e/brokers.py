"""The two brokers a stack can run on, and a TCP gate to cut one off for real.

``redis``: the job store's own Redis (the default). ``amqp``: the machine's RabbitMQ at
127.0.0.1:5672, in a vhost created for one stack and deleted after it (``rabbitmqctl``), so a
test never sees, or leaves behind, anyone else's queues. The job store stays on Redis.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import uuid
from contextlib import suppress

RABBIT_HOST, RABBIT_PORT = "127.0.0.1", 5672
BROKERS = ("redis", "amqp")


def rabbitmq_available() -> bool:
    if shutil.which("rabbitmqctl") is None:
        return False
    try:
        socket.create_connection((RABBIT_HOST, RABBIT_PORT), timeout=1).close()
    except OSError:
        return False
    return subprocess.run(["rabbitmqctl", "-q", "list_vhosts"], capture_output=True,
                          timeout=30).returncode == 0


class RabbitVhosts:
    """Private vhosts on the local RabbitMQ: one per stack, all deleted at teardown."""

    def __init__(self) -> None:
        self.created: list[str] = []

    def new_url(self, host: str = RABBIT_HOST, port: int = RABBIT_PORT) -> str:
        vhost = f"videopoll-test-{uuid.uuid4().hex[:10]}"
        _ctl("add_vhost", vhost)
        self.created.append(vhost)
        _ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        return f"amqp://guest:guest@{host}:{port}/{vhost}"

    def delete_all(self) -> None:
        for vhost in self.created:
            with suppress(subprocess.SubprocessError):
                _ctl("delete_vhost", vhost)
        self.created.clear()


def _ctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


class TcpGate:
    """A loopback TCP relay in front of a server; ``close()`` makes the server unreachable.

    Closing drops every relayed connection and stops listening, so clients see what a dead
    host or a network cut shows them (resets, then refused connections); ``open()`` listens
    again on the same port. The server behind it is shared and never touched.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = int(sock.getsockname()[1])
        sock.close()

    def open(self) -> TcpGate:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def close(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            conns, self._conns = self._conns, []
        for sock in [s for s in (listener,) if s is not None] + conns:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(a, b), daemon=True).start()


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    with suppress(OSError):
        src.settimeout(None)
        while data := src.recv(65536):
            dst.sendall(data)
    for sock in (src, dst):
        with suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
