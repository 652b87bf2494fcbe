"""Video metadata from real MP4s of known duration and size, with and without ffprobe."""

from __future__ import annotations

import shutil
import subprocess
import threading
import tracemalloc
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.conftest import MotoServer
from videopoll import media
from videopoll.media import MediaInfo, probe

MEDIA = Path(__file__).parent / "fixtures" / "media"
SAMPLE = Path(media.__file__).parent / "fake_provider" / "sample.mp4"
CASES = [
    (MEDIA / "clip_320x240_2s_24fps.mp4", 2.0, "320x240", 24.0),
    (MEDIA / "clip_256x144_3s_30fps_audio_moov_at_end.mp4", 3.0, "256x144", 30.0),
    (SAMPLE, 1.5, "160x90", 12.0),
]
FFMPEG = shutil.which("ffmpeg")
needs_ffmpeg = pytest.mark.skipif(FFMPEG is None, reason="ffmpeg is not installed")
needs_ffprobe = pytest.mark.skipif(shutil.which("ffprobe") is None,
                                   reason="ffprobe is not installed")


@pytest.fixture
def no_ffprobe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)  # as on a machine without ffmpeg


class FileServer:
    """Serves a folder over HTTP with Range support, as S3 and CDNs do, and logs each GET."""

    def __init__(self, root: Path, ranges: bool = True) -> None:
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append((self.path, self.headers.get("Range")))
                path = root / self.path.lstrip("/").split("?")[0]
                if not path.is_file():
                    self.send_error(404)
                    return
                data = path.read_bytes()
                start, end, status = 0, len(data) - 1, 200
                if ranges and self.headers.get("Range", "").startswith("bytes="):
                    first, _, last = self.headers["Range"][6:].partition("-")
                    start, status = int(first), 206
                    end = min(int(last), end) if last else end
                self.send_response(status)
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
                self.send_header("Content-Length", str(end - start + 1))
                self.end_headers()
                self.wfile.write(data[start:end + 1])

            def log_message(self, *_: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def files(tmp_path: Path) -> Iterator[FileServer]:
    server = FileServer(tmp_path)
    yield server
    server.stop()


def assert_reads(info: MediaInfo, duration: float, resolution: str, fps: float) -> None:
    assert info.duration_seconds == pytest.approx(duration, abs=0.1)
    assert (info.resolution, info.codec) == (resolution, "h264")
    assert info.fps == pytest.approx(fps, abs=0.01)


@pytest.mark.parametrize(("path", "duration", "resolution", "fps"), CASES)
def test_the_pure_python_reader(path: Path, duration: float, resolution: str, fps: float,
                                no_ffprobe: None) -> None:
    info = probe(str(path))
    assert info.probed_by == "mp4-reader"
    assert_reads(info, duration, resolution, fps)
    assert info.size_bytes == path.stat().st_size


@needs_ffprobe
@pytest.mark.parametrize(("path", "duration", "resolution", "fps"), CASES)
def test_ffprobe_agrees(path: Path, duration: float, resolution: str, fps: float) -> None:
    info = probe(str(path))
    assert info.probed_by == "ffprobe"
    assert_reads(info, duration, resolution, fps)
    assert info.size_bytes == path.stat().st_size


def make_clip(out: Path, seconds: float, size: str, rate: int, *extra: str) -> Path:
    assert FFMPEG is not None
    subprocess.run([FFMPEG, "-v", "error", "-f", "lavfi",
                    "-i", f"testsrc=duration={seconds}:size={size}:rate={rate}",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", *extra, "-y", str(out)],
                   check=True, timeout=120)
    return out


@needs_ffmpeg
@pytest.mark.parametrize(("seconds", "size", "rate", "extra"), [
    (2, "320x240", 24, ()),
    (4, "180x320", 25, ("-movflags", "+faststart")),  # portrait, moov first
    (1, "426x240", 30, ("-profile:v", "baseline")),
])
def test_clips_made_now_read_the_same_both_ways(
    tmp_path: Path, seconds: float, size: str, rate: int, extra: tuple[str, ...],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clip = make_clip(tmp_path / "clip.mp4", seconds, size, rate, *extra)
    by_ffprobe = probe(str(clip))
    assert by_ffprobe.probed_by == "ffprobe"
    assert_reads(by_ffprobe, seconds, size, rate)
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    by_reader = probe(str(clip))
    assert by_reader.probed_by == "mp4-reader"
    assert_reads(by_reader, seconds, size, rate)
    assert by_reader.size_bytes == by_ffprobe.size_bytes == clip.stat().st_size


@needs_ffmpeg
def test_a_fragmented_mp4_reports_no_duration_rather_than_zero(
    tmp_path: Path, no_ffprobe: None,
) -> None:
    clip = make_clip(tmp_path / "frag.mp4", 2, "320x240", 24,
                     "-movflags", "frag_keyframe+empty_moov")
    info = probe(str(clip))
    assert info.resolution == "320x240" and info.duration_seconds is None


def test_the_movie_data_is_skipped_not_read(tmp_path: Path, no_ffprobe: None) -> None:
    big = tmp_path / "big.mp4"
    padding = 40 * 1024 * 1024
    with big.open("wb") as out:
        out.write((MEDIA / "clip_320x240_2s_24fps.mp4").read_bytes())
        out.write((padding + 8).to_bytes(4, "big") + b"free")
        out.truncate(out.tell() + padding)  # sparse: the box is big, the disk is not
    tracemalloc.start()
    try:
        info = probe(str(big))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.duration_seconds == pytest.approx(2.0, abs=0.1)
    assert peak < 2 * 1024 * 1024, f"peak {peak} bytes: a box was read whole"


def test_something_that_is_not_a_video_yields_only_its_size(
    tmp_path: Path, no_ffprobe: None,
) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x00\x00\x02nope" * 10)
    assert probe(str(junk)) == MediaInfo(size_bytes=80)  # nothing read, nothing invented
    assert probe("http://127.0.0.1:9/v.mp4", 5) == MediaInfo(size_bytes=5)


@needs_ffprobe
def test_a_playlist_posing_as_a_video_makes_ffprobe_fetch_nothing(
    tmp_path: Path, files: FileServer,
) -> None:
    # a provider's "video" that is an HLS playlist would make ffprobe fetch whatever it names
    playlist = ("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n"
                f"{files.url}/internal-only.ts\n#EXT-X-ENDLIST\n")
    (tmp_path / "evil.mp4").write_text(playlist)
    assert probe(f"{files.url}/evil.mp4").resolution is None
    assert probe(str(tmp_path / "evil.mp4")).resolution is None
    assert {path for path, _ in files.requests} == {"/evil.mp4"}  # the playlist, not its URL


def test_a_link_is_read_by_ranges_without_ffprobe(
    tmp_path: Path, files: FileServer, no_ffprobe: None,
) -> None:
    clip = MEDIA / "clip_256x144_3s_30fps_audio_moov_at_end.mp4"
    (tmp_path / "v.mp4").write_bytes(clip.read_bytes())
    info = probe(f"{files.url}/v.mp4?X-Amz-Signature=x")
    assert info.probed_by == "mp4-reader" and info.size_bytes == clip.stat().st_size
    assert_reads(info, 3.0, "256x144", 30.0)
    assert all(rng is not None for _, rng in files.requests)  # never the whole file
    assert len(files.requests) <= 8


def test_a_server_that_ignores_ranges_is_not_downloaded(
    tmp_path: Path, no_ffprobe: None,
) -> None:
    (tmp_path / "v.mp4").write_bytes((MEDIA / "clip_320x240_2s_24fps.mp4").read_bytes())
    server = FileServer(tmp_path, ranges=False)  # answers 200 and the whole body
    try:
        assert probe(f"{server.url}/v.mp4", 7) == MediaInfo(size_bytes=7)
        assert len(server.requests) == 1
    finally:
        server.stop()


def test_a_presigned_s3_link_is_read_both_ways(
    s3_server: MotoServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    s3 = boto3.client("s3", endpoint_url=s3_server.url, region_name="us-east-1")
    s3.create_bucket(Bucket="media-probe")
    s3.upload_file(str(SAMPLE), "media-probe", "videos/veo3/sample.mp4")
    link = s3.generate_presigned_url("get_object", ExpiresIn=600, Params={
        "Bucket": "media-probe", "Key": "videos/veo3/sample.mp4"})
    if shutil.which("ffprobe"):
        assert_reads(probe(link), 1.5, "160x90", 12.0)
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    info = probe(link)
    assert info.probed_by == "mp4-reader" and info.size_bytes == SAMPLE.stat().st_size
    assert_reads(info, 1.5, "160x90", 12.0)
