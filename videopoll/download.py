"""Fetch a provider's output: streamed, size- and time-capped, only from safe URLs (invariant 8).

Two checks guard against reaching the private network. ``check_url`` refuses a URL whose name
resolves to a non-public address, and every connection checks the address it actually
connected to before a byte is sent: DNS may answer differently the second time (rebinding),
so the first answer alone proves nothing. Redirects are followed by hand so each hop is
checked again, and the session ignores proxy and netrc settings from the environment.

The time cap is wall time for the whole download, headers and redirects included. A socket
timeout only bounds one read, so a server that sends a byte just inside it would hold a worker
forever; a timer shuts the download's connections when its budget is spent.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any
from urllib.parse import urljoin, urlparse

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from videopoll.errors import DeliveryError

MAX_REDIRECTS = 5
CHUNK_BYTES = 256 * 1024
MAX_READ_TIMEOUT = 30.0
GONE = (404, 410)  # the provider's output expired or never existed: output_missing

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether ``address`` is reachable on the public internet, embedded forms included.

    ``is_global`` alone passes IPv6 forms that carry a private IPv4 inside (NAT64 and 6to4
    prefixes) and the deprecated site-local range, so those are unwrapped and checked too.
    """
    if address.is_multicast or not address.is_global:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        if address.is_site_local or address in _NAT64_LOCAL:
            return False
        if address.ipv4_mapped is not None:
            return is_public(address.ipv4_mapped)
        if address.sixtofour is not None:
            return is_public(address.sixtofour)
        if address.teredo is not None:
            return is_public(address.teredo[1])
        if address in _NAT64:
            return is_public(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return True


def check_url(url: str, allow_private: bool) -> None:
    """Raise a permanent ``DeliveryError`` unless ``url`` is http(s) to a public address."""
    try:
        parsed = urlparse(url)
        port = parsed.port  # parsing is lazy: a bad port or bracket only raises here
    except ValueError as exc:
        raise DeliveryError(f"refusing malformed URL: {exc}", permanent=True) from exc
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise DeliveryError(f"refusing non-http(s) URL scheme {parsed.scheme!r}", permanent=True)
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(parsed.hostname, port or 443, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise DeliveryError(f"cannot resolve {parsed.hostname}") from exc
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if not is_public(address):
            raise DeliveryError(
                f"refusing {parsed.hostname}: resolves to non-public {address}", permanent=True
            )


class _Deadline:
    """A download's wall-time budget, kept by shutting its connections when it is spent.

    Shutting the socket ends whatever read is blocked on it, in any thread. The connections
    enrol themselves as they send a request inside ``watching()``.
    """

    _active = threading.local()

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._ends = time.monotonic() + seconds
        self._fired = False
        self._lock = threading.Lock()
        self._conns: list[HTTPConnection] = []
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    @property
    def expired(self) -> bool:
        return self._fired or time.monotonic() >= self._ends

    def error(self) -> DeliveryError:
        """Retryable: the provider may serve faster next time."""
        return DeliveryError(f"download took longer than {self.seconds:g}s")

    def remaining(self) -> float:
        return max(self._ends - time.monotonic(), 0.001)

    @contextmanager
    def watching(self) -> Iterator[None]:
        _Deadline._active.current = self
        try:
            yield
        finally:
            _Deadline._active.current = None

    @classmethod
    def enrol(cls, conn: HTTPConnection) -> None:
        deadline: _Deadline | None = getattr(cls._active, "current", None)
        if deadline is None:
            return
        with deadline._lock:
            if deadline._fired:
                raise deadline.error()
            deadline._conns.append(conn)

    def _fire(self) -> None:
        with self._lock:
            self._fired = True
            conns = list(self._conns)
        for conn in conns:
            if conn.sock is not None:
                # the plain socket's shutdown: SSLSocket.shutdown would drop its TLS state
                # under a reader in another thread
                with suppress(OSError):
                    socket.socket.shutdown(conn.sock, socket.SHUT_RDWR)

    def cancel(self) -> None:
        self._timer.cancel()


def _check_peer(sock: socket.socket, host: str) -> None:
    peer = ipaddress.ip_address(str(sock.getpeername()[0]).split("%")[0])
    if not is_public(peer):
        sock.close()
        raise DeliveryError(f"refusing {host}: connected to non-public {peer}", permanent=True)


class _GuardedHTTPConnection(HTTPConnection):
    """Enrols in the running download's deadline; checks its peer when ``check_peer``."""

    check_peer = False

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        if self.check_peer:
            _check_peer(sock, self.host)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        _Deadline.enrol(self)
        super().request(*args, **kwargs)


class _GuardedHTTPSConnection(_GuardedHTTPConnection, HTTPSConnection):
    pass


class _PublicHTTPConnection(_GuardedHTTPConnection):
    check_peer = True


class _PublicHTTPSConnection(_GuardedHTTPSConnection):
    check_peer = True


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class _PublicHTTPPool(HTTPConnectionPool):
    ConnectionCls = _PublicHTTPConnection


class _PublicHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _PublicHTTPSConnection


class GuardedAdapter(HTTPAdapter):
    """Connections that keep a download's deadline and, when ``public_only``, refuse any peer
    that is not a public address."""

    def __init__(self, public_only: bool) -> None:
        self.public_only = public_only
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = (
            {"http": _PublicHTTPPool, "https": _PublicHTTPSPool} if self.public_only
            else {"http": _GuardedHTTPPool, "https": _GuardedHTTPSPool})


def safe_session(allow_private: bool) -> requests.Session:
    """A session for URLs callers and providers hand us: no env proxies, public peers only."""
    session = requests.Session()
    session.trust_env = False
    adapter = GuardedAdapter(public_only=not allow_private)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def stream(url: str, max_bytes: int, timeout: float, allow_private: bool,
           headers: dict[str, str] | None = None) -> Iterator[bytes]:
    """Yield the body of ``url`` in chunks; abort past ``max_bytes`` or ``timeout`` seconds.

    ``headers`` (a provider's key, where its output download needs one) go to ``url``'s own
    origin only: a redirect to another host (a CDN, a signed storage link) gets none of them.
    Network faults and the time cap raise a retryable ``DeliveryError``; unsafe URLs, 4xx
    answers and oversize bodies raise a permanent one, and 404/410 say the output is gone.
    """
    deadline = _Deadline(timeout)
    try:
        with safe_session(allow_private) as http:
            yield from _follow(http, url, max_bytes, deadline, allow_private, headers or {})
    finally:
        deadline.cancel()


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urlparse(url)
    return parts.scheme, parts.hostname, parts.port


def _follow(http: requests.Session, url: str, max_bytes: int, deadline: _Deadline,
            allow_private: bool, headers: dict[str, str]) -> Iterator[bytes]:
    origin = _origin(url)
    for _ in range(MAX_REDIRECTS + 1):
        check_url(url, allow_private)
        sent = headers if _origin(url) == origin else {}
        with _get(http, url, deadline, sent) as resp:
            if 300 <= resp.status_code < 400:
                if not resp.headers.get("Location"):
                    raise DeliveryError(f"HTTP {resp.status_code} without a Location",
                                        permanent=True)
                url = urljoin(url, resp.headers["Location"])
                continue
            _raise_for_status(resp.status_code)
            declared = resp.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise DeliveryError(f"video is {declared} bytes, over {max_bytes}", permanent=True)
            yield from _body(resp, max_bytes, deadline)
            return
    raise DeliveryError(f"more than {MAX_REDIRECTS} redirects", permanent=True)


def _get(http: requests.Session, url: str, deadline: _Deadline,
         headers: dict[str, str]) -> requests.Response:
    if deadline.expired:
        raise deadline.error()
    left = deadline.remaining()
    try:
        with deadline.watching():
            return http.get(url, stream=True, allow_redirects=False, headers=headers,
                            timeout=(min(left, 10.0), min(left, MAX_READ_TIMEOUT)))
    except DeliveryError:
        raise
    except requests.RequestException as exc:
        if deadline.expired:
            raise deadline.error() from exc
        if isinstance(exc.__context__, DeliveryError):
            raise exc.__context__ from exc
        raise DeliveryError(f"download failed: {type(exc).__name__}") from exc


def _raise_for_status(status: int) -> None:
    if status in GONE:
        raise DeliveryError(f"download answered HTTP {status}: the output is gone",
                            permanent=True, code="output_missing")
    if status >= 400:
        raise DeliveryError(f"download answered HTTP {status}",
                            permanent=status < 500 and status not in (408, 429))


def _body(resp: requests.Response, max_bytes: int, deadline: _Deadline) -> Iterator[bytes]:
    total = 0
    try:
        # read1: whatever one socket read brings (up to a chunk), so a read ends as soon as
        # bytes arrive; iter_content would wait for a whole chunk to trickle in.
        for chunk in iter(lambda: resp.raw.read1(CHUNK_BYTES, decode_content=True), b""):
            if deadline.expired:
                raise deadline.error()
            total += len(chunk)
            if total > max_bytes:
                raise DeliveryError(f"video exceeds {max_bytes} bytes", permanent=True)
            yield chunk
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        if deadline.expired:
            raise deadline.error() from exc
        raise DeliveryError(f"download interrupted: {type(exc).__name__}") from exc
    if deadline.expired:  # a shut connection without a length reads as a clean end
        raise deadline.error()
    if total == 0:
        raise DeliveryError("download was empty")
