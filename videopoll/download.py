"""Fetch a provider's output: streamed, size- and time-capped, only from safe URLs (invariant 8).

Two checks guard against reaching the private network. ``check_url`` refuses a URL whose name
resolves to a non-public address, and every connection checks the address it actually
connected to before a byte is sent: DNS may answer differently the second time (rebinding),
so the first answer alone proves nothing. Redirects are followed by hand so each hop is
checked again, and the session ignores proxy and netrc settings from the environment.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Iterator
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
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise DeliveryError(f"refusing non-http(s) URL scheme {parsed.scheme!r}", permanent=True)
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(parsed.hostname, parsed.port or 443, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise DeliveryError(f"cannot resolve {parsed.hostname}") from exc
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if not is_public(address):
            raise DeliveryError(
                f"refusing {parsed.hostname}: resolves to non-public {address}", permanent=True
            )


def _check_peer(sock: socket.socket, host: str) -> None:
    peer = ipaddress.ip_address(str(sock.getpeername()[0]).split("%")[0])
    if not is_public(peer):
        sock.close()
        raise DeliveryError(f"refusing {host}: connected to non-public {peer}", permanent=True)


class _CheckedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _check_peer(sock, self.host)
        return sock


class _CheckedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _check_peer(sock, self.host)
        return sock


class _CheckedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _CheckedHTTPConnection


class _CheckedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _CheckedHTTPSConnection


class PublicOnlyAdapter(HTTPAdapter):
    """An adapter whose connections refuse any peer that is not a public address."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _CheckedHTTPPool, "https": _CheckedHTTPSPool}


def safe_session(allow_private: bool) -> requests.Session:
    """A session for URLs callers and providers hand us: no env proxies, public peers only."""
    session = requests.Session()
    session.trust_env = False
    if not allow_private:
        adapter = PublicOnlyAdapter(max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
    return session


def stream(
    url: str, max_bytes: int, timeout: float, allow_private: bool,
    session: requests.Session | None = None,
) -> Iterator[bytes]:
    """Yield the body of ``url`` in chunks; abort past ``max_bytes`` or ``timeout`` seconds.

    ``timeout`` bounds the whole download by wall time (a server that trickles a byte a
    second must not hold a worker forever; a socket timeout only bounds each read). Network
    faults and timeouts raise a retryable ``DeliveryError``; unsafe URLs, 4xx answers and
    oversize bodies raise a permanent one, and 404/410 say the output is gone.
    """
    http = session or safe_session(allow_private)
    started = time.monotonic()
    read_timeout = min(timeout, MAX_READ_TIMEOUT)
    for _ in range(MAX_REDIRECTS + 1):
        check_url(url, allow_private)
        try:
            resp = http.get(url, stream=True, timeout=(min(timeout, 10.0), read_timeout),
                            allow_redirects=False)
        except DeliveryError:
            raise
        except requests.RequestException as exc:
            if isinstance(exc.__context__, DeliveryError):
                raise exc.__context__ from exc
            raise DeliveryError(f"download failed: {type(exc).__name__}") from exc
        with resp:
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
            yield from _body(resp, max_bytes, started, timeout)
            return
    raise DeliveryError(f"more than {MAX_REDIRECTS} redirects", permanent=True)


def _raise_for_status(status: int) -> None:
    if status in GONE:
        raise DeliveryError(f"download answered HTTP {status}: the output is gone",
                            permanent=True, code="output_missing")
    if status >= 400:
        raise DeliveryError(f"download answered HTTP {status}",
                            permanent=status < 500 and status not in (408, 429))


def _body(resp: requests.Response, max_bytes: int, started: float,
          timeout: float) -> Iterator[bytes]:
    total = 0
    try:
        # read1: whatever one socket read brings (up to a chunk), so the wall-time check runs
        # between reads; iter_content would block until a whole chunk had trickled in.
        for chunk in iter(lambda: resp.raw.read1(CHUNK_BYTES, decode_content=True), b""):
            total += len(chunk)
            if total > max_bytes:
                raise DeliveryError(f"video exceeds {max_bytes} bytes", permanent=True)
            if time.monotonic() - started > timeout:
                raise DeliveryError(f"download took longer than {timeout:.0f}s")
            yield chunk
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        raise DeliveryError(f"download interrupted: {type(exc).__name__}") from exc
    if total == 0:
        raise DeliveryError("download was empty")
