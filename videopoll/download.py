"""Fetch a provider's output: streamed, size-capped, and only from safe URLs (invariant 8).

Redirects are followed by hand so each hop is checked again: a public URL must not bounce us
into the private network.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from urllib.parse import urljoin, urlparse

import requests

from videopoll.errors import DeliveryError

MAX_REDIRECTS = 5
CHUNK_BYTES = 256 * 1024


def check_url(url: str, allow_private: bool) -> None:
    """Raise a permanent ``DeliveryError`` unless ``url`` is http(s) to a public address."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise DeliveryError(f"refusing non-http(s) URL scheme {parsed.scheme!r}", permanent=True)
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(parsed.hostname, parsed.port or 443, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise DeliveryError(f"cannot resolve {parsed.hostname}") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global or address.is_multicast:
            raise DeliveryError(
                f"refusing {parsed.hostname}: resolves to non-public {address}", permanent=True
            )


def stream(
    url: str, max_bytes: int, timeout: float, allow_private: bool,
    session: requests.Session | None = None,
) -> Iterator[bytes]:
    """Yield the body of ``url`` in chunks; abort past ``max_bytes``.

    Network faults raise a retryable ``DeliveryError``; unsafe URLs, 4xx answers and
    oversize bodies raise a permanent one.
    """
    http = session or requests.Session()
    for _ in range(MAX_REDIRECTS + 1):
        check_url(url, allow_private)
        try:
            resp = http.get(url, stream=True, timeout=timeout, allow_redirects=False)
        except requests.RequestException as exc:
            raise DeliveryError(f"download failed: {type(exc).__name__}") from exc
        with resp:
            if resp.is_redirect and resp.headers.get("Location"):
                url = urljoin(url, resp.headers["Location"])
                continue
            if resp.status_code >= 400:
                raise DeliveryError(
                    f"download answered HTTP {resp.status_code}",
                    permanent=resp.status_code < 500 and resp.status_code not in (408, 429),
                )
            declared = resp.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise DeliveryError(f"video is {declared} bytes, over {max_bytes}", permanent=True)
            total = 0
            try:
                for chunk in resp.iter_content(CHUNK_BYTES):
                    total += len(chunk)
                    if total > max_bytes:
                        raise DeliveryError(f"video exceeds {max_bytes} bytes", permanent=True)
                    yield chunk
            except requests.RequestException as exc:
                raise DeliveryError(f"download interrupted: {type(exc).__name__}") from exc
            if total == 0:
                raise DeliveryError("download was empty")
            return
    raise DeliveryError(f"more than {MAX_REDIRECTS} redirects", permanent=True)
