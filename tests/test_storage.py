"""Storage against a real S3 endpoint (moto's server over HTTP) and the local folder."""

from __future__ import annotations

import http.server
import threading
import tracemalloc
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import requests

from tests.conftest import MotoServer, aws_test_credentials
from videopoll.download import stream
from videopoll.errors import DeliveryError
from videopoll.storage import FileStorage, S3Storage, build_storage, video_key

MiB = 1024 * 1024


def s3(server: MotoServer, **kw: object) -> S3Storage:
    bucket = f"videos-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=server.url).create_bucket(Bucket=bucket)
    storage = build_storage(f"s3://{bucket}/prefix", endpoint_url=server.url, **kw)  # type: ignore[arg-type]
    assert isinstance(storage, S3Storage)
    return storage


def chunks(total: int, size: int = 256 * 1024) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        n = min(size, total - sent)
        yield bytes([sent // size % 251]) * n
        sent += n


def test_key_layout_is_by_model_and_month() -> None:
    assert video_key("veo3", "job_abc", 1_795_000_000) == "videos/veo3/2026/11/job_abc.mp4"


def test_s3_round_trip_with_content_type_and_metadata(s3_server: MotoServer) -> None:
    storage = s3(s3_server)
    stored = storage.put_stream("videos/veo3/2026/11/job_1.mp4", [b"mp4!", b"data"],
                                {"job-id": "job_1", "model": "veo3"})
    assert stored.url == f"s3://{storage.bucket}/prefix/videos/veo3/2026/11/job_1.mp4"
    assert stored.size_bytes == 8
    head = storage.client.head_object(Bucket=storage.bucket, Key="prefix/" + stored.key)
    assert head["ContentType"] == "video/mp4"
    assert head["Metadata"] == {"job-id": "job_1", "model": "veo3"}
    assert storage.stat(stored.key) == stored
    assert storage.stat("videos/none.mp4") is None


def test_a_presigned_link_is_made_at_read_time_and_opens(s3_server: MotoServer) -> None:
    storage = s3(s3_server, presign_seconds=600)
    storage.put_stream("v.mp4", [b"video-bytes"])
    link = storage.link_for("v.mp4")
    assert link is not None and "Signature" in link and "Expires=" in link
    assert requests.get(link, timeout=10).content == b"video-bytes"


def test_a_public_base_url_wins_over_presigning(s3_server: MotoServer) -> None:
    """The public base is the bucket's public address (a CDN or public-bucket endpoint), so
    the link carries the whole object key, prefix included: the path S3 serves it at."""
    storage = s3(s3_server, public_base_url="https://cdn.example/v/")
    assert storage.link_for("videos/a b.mp4") == "https://cdn.example/v/prefix/videos/a%20b.mp4"


def test_a_multi_part_upload_reassembles_exactly(s3_server: MotoServer) -> None:
    storage = s3(s3_server)
    storage.part_bytes = 5 * MiB  # S3's smallest part
    body = b"".join(chunks(12 * MiB + 123))
    stored = storage.put_stream("big.mp4", chunks(12 * MiB + 123))
    assert stored.size_bytes == len(body)
    got = storage.client.get_object(Bucket=storage.bucket, Key="prefix/big.mp4")["Body"].read()
    assert got == body



def test_each_part_carries_a_crc32_and_the_object_keeps_their_composite(
        s3_server: MotoServer) -> None:
    """S3 checks every part against its CRC32 and the object records the composite over its
    parts, as AWS's transfer manager uploads: a corrupted part is refused, not stored."""
    import base64
    import zlib

    storage = s3(s3_server)
    storage.part_bytes = 5 * MiB
    body = b"".join(chunks(11 * MiB))
    storage.put_stream("sum.mp4", chunks(11 * MiB))
    head = storage.client.head_object(Bucket=storage.bucket, Key="prefix/sum.mp4",
                                      ChecksumMode="ENABLED")
    parts = [body[i:i + 5 * MiB] for i in range(0, len(body), 5 * MiB)]
    crcs = b"".join(zlib.crc32(p).to_bytes(4, "big") for p in parts)
    composite = base64.b64encode(zlib.crc32(crcs).to_bytes(4, "big")).decode()
    # S3 appends "-<parts>" to a composite; moto leaves it off
    assert head["ChecksumCRC32"].removesuffix(f"-{len(parts)}") == composite


def test_checksums_stay_off_where_the_client_computes_them_only_when_required(
        s3_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Some S3 APIs refuse checksum headers; botocore's own switch turns ours off too."""
    monkeypatch.setenv("AWS_REQUEST_CHECKSUM_CALCULATION", "when_required")
    storage = s3(s3_server)
    storage.put_stream("plain.mp4", [b"video"])
    head = storage.client.head_object(Bucket=storage.bucket, Key="prefix/plain.mp4",
                                      ChecksumMode="ENABLED")
    assert "ChecksumCRC32" not in head
    assert storage.client.get_object(Bucket=storage.bucket,
                                     Key="prefix/plain.mp4")["Body"].read() == b"video"

def test_s3_stopping_mid_upload_is_a_retryable_error_and_leaves_no_object(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """S3 vanishes after the first part: upload_part fails after botocore's own retries
    (well under a second for a refused connection), the abort cannot reach S3 either, and
    the error is a retryable DeliveryError. moto keeps its state in memory, so the restarted
    server has neither the object nor the upload; against real S3 the unfinished upload
    stays, invisible and billed, until a lifecycle rule (AbortIncompleteMultipartUpload)
    removes it. The abort that does reach S3 is tested below."""
    for name, value in aws_test_credentials().items():
        monkeypatch.setenv(name, value)  # this test starts its own S3, not the fixture's
    server = MotoServer().start()
    try:
        storage = s3(server)
        storage.part_bytes = 5 * MiB

        def dies_after_first_part() -> Iterator[bytes]:
            yield from chunks(6 * MiB)
            server.stop()  # S3 goes away between parts
            yield from chunks(6 * MiB)

        with pytest.raises(DeliveryError) as info:
            storage.put_stream("cut.mp4", dies_after_first_part())
        assert not info.value.permanent  # the video is still at the provider: try again
        server.start()  # a fresh S3: nothing half-written is visible
        storage.client.create_bucket(Bucket=storage.bucket)
        assert storage.stat("cut.mp4") is None
        stored = storage.put_stream("cut.mp4", chunks(6 * MiB))  # the retry succeeds
        assert stored.size_bytes == 6 * MiB
    finally:
        server.stop()


class _BigVideo(http.server.BaseHTTPRequestHandler):
    """Serves a generated 300 MB body, written in 1 MiB pieces: a large provider output."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(300 * MiB))
        self.end_headers()
        piece = b"v" * MiB
        for _ in range(300):
            self.wfile.write(piece)

    def log_message(self, *_: object) -> None:
        pass


@pytest.mark.slow
def test_a_300_mb_video_goes_from_provider_to_s3_with_flat_memory(
    s3_server: MotoServer,
) -> None:
    """The whole pipeline, download streamed straight into a multipart upload."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _BigVideo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    storage = s3(s3_server)
    url = f"http://127.0.0.1:{server.server_address[1]}/big.mp4"
    tracemalloc.start()
    try:
        stored = storage.put_stream("huge.mp4", stream(url, 400 * MiB, 120, allow_private=True))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        server.shutdown()
    assert stored.size_bytes == 300 * MiB
    assert storage.stat("huge.mp4") == stored
    print(f"peak traced memory for 300 MiB: {peak / MiB:.1f} MiB")
    assert peak < 40 * MiB, f"peak {peak / MiB:.1f} MiB"  # one 8 MiB part and a few copies


def test_file_links_never_show_a_server_path(tmp_path: Path) -> None:
    storage = FileStorage(tmp_path)
    storage.put_stream("videos/veo3/2026/11/job_1.mp4", [b"x"])
    link = storage.link_for("videos/veo3/2026/11/job_1.mp4", "http://api.local:8000/")
    assert link == "http://api.local:8000/videos/videos/veo3/2026/11/job_1.mp4"
    assert str(tmp_path) not in link
    assert storage.link_for("videos/x.mp4") is None  # no API and no public base: no link


def test_a_failed_upload_is_aborted_so_no_part_lingers(s3_server: MotoServer) -> None:
    """The download dies after one part while S3 is up: the abort reaches S3."""
    storage = s3(s3_server)
    storage.part_bytes = 5 * MiB

    def download_dies_after_first_part() -> Iterator[bytes]:
        yield from chunks(6 * MiB)
        raise DeliveryError("provider connection reset")

    with pytest.raises(DeliveryError, match="connection reset"):
        storage.put_stream("cut.mp4", download_dies_after_first_part())
    assert storage.stat("cut.mp4") is None
    uploads = storage.client.list_multipart_uploads(Bucket=storage.bucket)
    assert uploads.get("Uploads", []) == []  # no billed, invisible parts left behind


def test_metadata_that_s3_cannot_carry_is_escaped_not_fatal(s3_server: MotoServer) -> None:
    """S3 user metadata is ASCII only; a provider id with other characters must not make the
    upload fail on every retry."""
    storage = s3(s3_server)
    storage.put_stream("m.mp4", [b"x"], {"provider-task-id": "tâche-1", "model": "veo3"})
    head = storage.client.head_object(Bucket=storage.bucket, Key="prefix/m.mp4")
    assert head["Metadata"] == {"provider-task-id": "t%C3%A2che-1", "model": "veo3"}


def test_file_storage_ignores_metadata_and_replaces_atomically(tmp_path: Path) -> None:
    storage = build_storage(tmp_path.as_uri())
    stored = storage.put_stream("videos/a.mp4", [b"ab", b"c"], {"job-id": "job_1"})
    assert stored == storage.stat("videos/a.mp4")
    assert stored.size_bytes == 3 and stored.url.startswith("file://")

    def dies() -> Iterator[bytes]:
        yield b"new"
        raise DeliveryError("cut")

    with pytest.raises(DeliveryError):
        storage.put_stream("videos/a.mp4", dies())
    assert (tmp_path / "videos/a.mp4").read_bytes() == b"abc"  # the old video is intact
    assert [p.name for p in (tmp_path / "videos").iterdir()] == ["a.mp4"]  # no partial file
