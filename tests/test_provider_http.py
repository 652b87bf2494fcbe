"""Provider sessions read the environment once per origin, and still honour it: a provider
behind an egress proxy is reached through ``HTTP_PROXY``, and ``NO_PROXY`` still bypasses it."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from videopoll.providers import http as provider_http
from videopoll.providers.http import ProviderSession


class _Proxy(http.server.BaseHTTPRequestHandler):
    """A forward proxy that answers every request itself and remembers its request line."""

    seen: list[str] = []

    def do_GET(self) -> None:
        self.seen.append(self.path)  # a proxied request names the whole URL
        body = b'{"via": "proxy"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture()
def proxy() -> Iterator[str]:
    _Proxy.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Proxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_requests_go_through_the_environments_proxy(
        proxy: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    session = ProviderSession()
    for n in range(3):
        resp = session.get(f"http://provider.invalid/status?n={n}", timeout=5)
        assert resp.json() == {"via": "proxy"}
    assert _Proxy.seen == [f"http://provider.invalid/status?n={n}" for n in range(3)]


def test_no_proxy_still_bypasses_it(proxy: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.setenv("NO_PROXY", "provider.invalid")
    session = ProviderSession()
    with pytest.raises(requests.ConnectionError):  # straight to a name that does not resolve
        session.get("http://provider.invalid/status", timeout=5)
    assert _Proxy.seen == []


def test_the_environment_is_read_once_per_origin(
        proxy: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy)
    calls: list[str] = []
    real = provider_http.get_environ_proxies

    def counted(url: str, no_proxy: Any = None) -> Any:
        calls.append(url)
        return real(url, no_proxy=no_proxy)

    monkeypatch.setattr(provider_http, "get_environ_proxies", counted)
    session = ProviderSession()
    for n in range(5):
        session.get(f"http://provider.invalid/a?n={n}", timeout=5)
    session.get("http://other.invalid/b", timeout=5)
    assert len(calls) == 2  # one per origin, not one per request
    assert len(_Proxy.seen) == 6
