"""Downloads go only to safe URLs, stream, and stop at the size cap (invariant 8)."""

from __future__ import annotations

import http.server
import ipaddress
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import responses

from videopoll.download import check_url, is_public, stream
from videopoll.errors import DeliveryError


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1/v.mp4", "http://10.0.0.8/v.mp4", "http://169.254.169.254/latest",
     "http://[::1]/v.mp4", "http://localhost/v.mp4", "file:///etc/passwd", "ftp://x/v.mp4"],
)
def test_private_and_odd_urls_are_refused(url: str) -> None:
    with pytest.raises(DeliveryError) as info:
        check_url(url, allow_private=False)
    assert info.value.permanent


def test_loopback_is_allowed_only_when_configured() -> None:
    check_url("http://127.0.0.1:8099/files/x.mp4", allow_private=True)
    with pytest.raises(DeliveryError):
        check_url("file:///etc/passwd", allow_private=True)


@responses.activate
def test_oversize_body_is_cut_off() -> None:
    responses.get("http://127.0.0.1/big.mp4", body=b"x" * 5000)
    with pytest.raises(DeliveryError, match="exceeds") as info:
        b"".join(stream("http://127.0.0.1/big.mp4", 4096, 5, allow_private=True))
    assert info.value.permanent


@responses.activate
def test_declared_oversize_is_refused_before_reading() -> None:
    responses.get("http://127.0.0.1/big.mp4", body=b"x" * 10,
                  headers={"Content-Length": "999999"}, auto_calculate_content_length=False)
    with pytest.raises(DeliveryError, match="over"):
        list(stream("http://127.0.0.1/big.mp4", 4096, 5, allow_private=True))


@responses.activate
def test_redirect_into_private_network_is_refused() -> None:
    responses.get("http://93.184.215.14/v.mp4", status=302,
                  headers={"Location": "http://10.1.2.3/v.mp4"})
    with pytest.raises(DeliveryError, match="non-public"):
        list(stream("http://93.184.215.14/v.mp4", 4096, 5, allow_private=False))


@responses.activate
def test_server_errors_are_retryable_and_404_is_not() -> None:
    responses.get("http://127.0.0.1/a.mp4", status=503)
    responses.get("http://127.0.0.1/b.mp4", status=404)
    with pytest.raises(DeliveryError) as retry:
        list(stream("http://127.0.0.1/a.mp4", 4096, 5, allow_private=True))
    with pytest.raises(DeliveryError) as final:
        list(stream("http://127.0.0.1/b.mp4", 4096, 5, allow_private=True))
    assert (retry.value.permanent, final.value.permanent) == (False, True)


@pytest.mark.parametrize(("address", "public"), [
    ("8.8.8.8", True),
    ("2606:4700:4700::1111", True),
    ("64:ff9b::808:808", True),           # NAT64 of a public address
    ("64:ff9b::a00:1", False),            # NAT64 of 10.0.0.1
    ("64:ff9b::7f00:1", False),           # NAT64 of 127.0.0.1
    ("64:ff9b:1::a00:1", False),          # local-use NAT64
    ("2002:a00:1::1", False),             # 6to4 of 10.0.0.1
    ("2002:808:808::1", True),            # 6to4 of 8.8.8.8
    ("::ffff:10.0.0.1", False),           # IPv4-mapped private
    ("::ffff:127.0.0.1", False),
    ("fec0::1", False),                   # deprecated site-local
    ("fe80::1", False),
    ("fc00::1", False),
    ("100.64.0.1", False),                # carrier-grade NAT
    ("169.254.169.254", False),           # cloud metadata
    ("224.0.0.1", False),
])
def test_only_public_addresses_pass_embedded_forms_included(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public


@pytest.fixture
def local_files() -> Iterator[tuple[str, list[str]]]:
    """A real HTTP server on 127.0.0.1 that records each path it is asked for."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            if self.path == "/trickle.mp4":
                self.send_response(200)
                self.send_header("Content-Length", "100")
                self.end_headers()
                for _ in range(100):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.05)
                return
            if self.path == "/slow-headers":
                # a status line, then one header a byte at a time: every read is quick
                try:
                    self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Pad: ")
                    for _ in range(200):
                        self.wfile.write(b"a")
                        self.wfile.flush()
                        time.sleep(0.05)
                except OSError:
                    pass
                return
            if self.path == "/bad-port":
                self.send_response(302)
                self.send_header("Location", "http://93.184.215.14:99999/v.mp4")
                self.end_headers()
                return
            if self.path == "/noloc":
                self.send_response(302)
                self.end_headers()
                return
            status = 410 if self.path == "/gone.mp4" else 200
            self.send_response(status)
            self.send_header("Content-Length", "4")
            self.end_headers()
            self.wfile.write(b"mp4!")

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()


def test_a_name_that_rebinds_to_loopback_after_the_check_is_never_contacted(
    local_files: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, seen = local_files
    port = int(base.rsplit(":", 1)[1])
    real = socket.getaddrinfo
    answers = iter([[(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port))]])

    def rebinding(host: str, *args: object, **kw: object) -> object:
        if host == "videos.example":
            # the check sees a public address; the connection then resolves to loopback
            return next(answers, [(socket.AF_INET, socket.SOCK_STREAM, 6, "",
                                   ("127.0.0.1", port))])
        return real(host, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    with pytest.raises(DeliveryError, match="non-public") as info:
        list(stream(f"http://videos.example:{port}/v.mp4", 4096, 5, allow_private=False))
    assert info.value.permanent
    assert seen == []  # not one request reached the loopback server


def test_the_whole_download_is_bounded_by_wall_time(local_files: tuple[str, list[str]]) -> None:
    base, _ = local_files
    began = time.monotonic()
    with pytest.raises(DeliveryError, match="longer than") as info:
        list(stream(f"{base}/trickle.mp4", 4096, 1.0, allow_private=True))
    assert not info.value.permanent  # worth another try later
    assert time.monotonic() - began < 4  # each read was quick; the sum was capped


def test_headers_that_trickle_are_bounded_by_wall_time_too(
    local_files: tuple[str, list[str]]
) -> None:
    base, _ = local_files
    began = time.monotonic()
    with pytest.raises(DeliveryError, match="longer than") as info:
        list(stream(f"{base}/slow-headers", 4096, 1.0, allow_private=True))
    assert not info.value.permanent
    assert time.monotonic() - began < 4  # the server would take 10 s to finish its headers


@pytest.mark.parametrize("url", ["http://93.184.215.14:99999/v.mp4", "http://[::1/v.mp4"])
def test_a_malformed_url_is_a_permanent_delivery_error(url: str) -> None:
    with pytest.raises(DeliveryError) as info:
        check_url(url, allow_private=False)
    assert info.value.permanent


def test_a_redirect_to_a_malformed_url_is_a_delivery_error(
    local_files: tuple[str, list[str]]
) -> None:
    base, _ = local_files
    with pytest.raises(DeliveryError) as info:
        list(stream(f"{base}/bad-port", 4096, 5, allow_private=True))
    assert info.value.permanent


def test_a_redirect_without_location_is_an_error(local_files: tuple[str, list[str]]) -> None:
    base, _ = local_files
    with pytest.raises(DeliveryError, match="without a Location"):
        list(stream(f"{base}/noloc", 4096, 5, allow_private=True))


def test_a_result_url_that_is_gone_is_output_missing(local_files: tuple[str, list[str]]) -> None:
    base, _ = local_files
    with pytest.raises(DeliveryError) as info:
        list(stream(f"{base}/gone.mp4", 4096, 5, allow_private=True))
    assert (info.value.permanent, info.value.code) == (True, "output_missing")


def test_proxy_settings_in_the_environment_are_ignored(
    local_files: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, _ = local_files
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert b"".join(stream(f"{base}/v.mp4", 4096, 5, allow_private=True)) == b"mp4!"
