"""Downloads go only to safe URLs, stream, and stop at the size cap (invariant 8)."""

from __future__ import annotations

import pytest
import responses

from videopoll.download import check_url, stream
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
