"""Video metadata from real MP4s of known duration and size, with and without ffprobe."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from videopoll import media
from videopoll.media import MediaInfo, probe

MEDIA = Path(__file__).parent / "fixtures" / "media"
SAMPLE = Path(media.__file__).parent / "fake_provider" / "sample.mp4"
CASES = [
    (MEDIA / "clip_320x240_2s_24fps.mp4", 2.0, "320x240", 24.0),
    (MEDIA / "clip_256x144_3s_30fps_audio_moov_at_end.mp4", 3.0, "256x144", 30.0),
    (SAMPLE, 1.5, "160x90", 12.0),
]


@pytest.mark.parametrize(("path", "duration", "resolution", "fps"), CASES)
def test_the_pure_python_reader(
    path: Path, duration: float, resolution: str, fps: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)  # as on a machine without ffmpeg
    info = probe(str(path))
    assert info.probed_by == "mp4-reader"
    assert info.duration_seconds == pytest.approx(duration, abs=0.1)
    assert (info.resolution, info.codec) == (resolution, "h264")
    assert info.fps == pytest.approx(fps, abs=0.01)
    assert info.size_bytes == path.stat().st_size


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="ffprobe is not installed")
@pytest.mark.parametrize(("path", "duration", "resolution", "fps"), CASES)
def test_ffprobe_agrees(path: Path, duration: float, resolution: str, fps: float) -> None:
    info = probe(str(path))
    assert info.probed_by == "ffprobe"
    assert info.duration_seconds == pytest.approx(duration, abs=0.1)
    assert (info.resolution, info.codec, info.size_bytes) == (
        resolution, "h264", path.stat().st_size)
    assert info.fps == pytest.approx(fps, abs=0.01)


def test_something_that_is_not_a_video_yields_only_its_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x00\x00\x02nope" * 10)
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    assert probe(str(junk)) == MediaInfo(size_bytes=80)  # nothing read, nothing invented
    assert probe("https://unreachable.example/v.mp4", 5) == MediaInfo(size_bytes=5)
