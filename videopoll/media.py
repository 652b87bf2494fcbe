"""Read a stored video's duration, resolution, codec, fps and size, for captions and analytics.

``ffprobe`` is used when it is installed (``make`` installs ffmpeg where it is missing); it
reads local files and http(s) links alike. Without it a small MP4 box reader answers for
local files: ``moov/mvhd`` for the duration, the video track's ``tkhd`` for the size, ``mdhd``
and ``stts`` for the frame rate, ``stsd`` for the codec. A file neither can read yields a
``MediaInfo`` with only the size: metadata never fails a delivery.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from pathlib import Path
from typing import IO

from pydantic import BaseModel

PROBE_TIMEOUT_SECONDS = 30
CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl"}
MAX_MOOV_BYTES = 64 * 1024 * 1024


class MediaInfo(BaseModel):
    duration_seconds: float | None = None
    width: int | None = None
    height: int | None = None
    codec: str | None = None
    fps: float | None = None
    size_bytes: int | None = None
    probed_by: str = "none"

    @property
    def resolution(self) -> str | None:
        return f"{self.width}x{self.height}" if self.width and self.height else None


def probe(target: str, size_bytes: int | None = None) -> MediaInfo:
    """What ``target`` (a local path or an http(s) URL) holds; never raises."""
    if shutil.which("ffprobe"):
        info = _ffprobe(target)
        if info is not None:
            return info.model_copy(update={"size_bytes": info.size_bytes or size_bytes})
    if not target.startswith(("http://", "https://")):
        path = Path(target)
        if path.is_file():
            with path.open("rb") as fh:
                info = read_mp4(fh)
            return info.model_copy(update={"size_bytes": path.stat().st_size})
    return MediaInfo(size_bytes=size_bytes)


def _ffprobe(target: str) -> MediaInfo | None:
    try:
        done = subprocess.run(
            ["ffprobe", "-v", "error", "-print_format", "json", "-show_format",
             "-show_streams", target],
            capture_output=True, timeout=PROBE_TIMEOUT_SECONDS, check=False)
        data = json.loads(done.stdout or b"{}")
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return None
    video = next((s for s in data.get("streams", []) if s.get("codec_type") == "video"), None)
    if video is None:
        return None
    fmt = data.get("format", {})
    return MediaInfo(
        duration_seconds=_float(video.get("duration") or fmt.get("duration")),
        width=video.get("width"), height=video.get("height"), codec=video.get("codec_name"),
        fps=_rate(video.get("avg_frame_rate") or video.get("r_frame_rate")),
        size_bytes=int(fmt["size"]) if str(fmt.get("size", "")).isdigit() else None,
        probed_by="ffprobe")


def _float(value: object) -> float | None:
    try:
        return round(float(str(value)), 3)
    except ValueError:
        return None


def _rate(value: object) -> float | None:
    num, _, den = str(value).partition("/")
    try:
        return round(float(num) / float(den or 1), 3) if float(den or 1) else None
    except ValueError:
        return None


def read_mp4(fh: IO[bytes]) -> MediaInfo:
    """The pure-Python fallback: walk the MP4 boxes that hold what we report."""
    try:
        found: dict[str, object] = {}
        _walk(fh, 0, _size(fh), found, in_video=False)
    except (struct.error, ValueError, OSError):
        return MediaInfo()
    return MediaInfo.model_validate({**found, "probed_by": "mp4-reader"})


def _size(fh: IO[bytes]) -> int:
    fh.seek(0, 2)
    end = fh.tell()
    fh.seek(0)
    return end


def _walk(fh: IO[bytes], start: int, end: int, found: dict[str, object],
          in_video: bool) -> None:
    offset = start
    track: dict[str, object] = {}
    while offset + 8 <= end:
        fh.seek(offset)
        size, kind = struct.unpack(">I4s", fh.read(8))
        header = 8
        if size == 1:
            size = struct.unpack(">Q", fh.read(8))[0]
            header = 16
        elif size == 0:
            size = end - offset
        if size < header:
            raise ValueError("corrupt box")
        body = offset + header
        if kind == b"trak":
            track = {}
            _walk(fh, body, offset + size, track, in_video=False)
            if track.pop("is_video", False):
                found.update({k: v for k, v in track.items()
                              if k not in found and not k.startswith("_")})
        elif kind in CONTAINERS:
            _walk(fh, body, offset + size, found, in_video)
        elif size <= MAX_MOOV_BYTES:
            _leaf(kind, fh.read(size - header), found)
        offset += size


def _leaf(kind: bytes, data: bytes, found: dict[str, object]) -> None:
    if kind == b"mvhd":
        version = data[0]
        scale, duration = (struct.unpack(">IQ", data[20:32]) if version == 1
                           else struct.unpack(">II", data[12:20]))
        if scale:
            found.setdefault("duration_seconds", round(duration / scale, 3))
    elif kind == b"tkhd":
        width, height = struct.unpack(">II", data[-8:])
        found["width"], found["height"] = width >> 16, height >> 16
    elif kind == b"hdlr":
        found["is_video"] = data[8:12] == b"vide"
    elif kind == b"mdhd":
        version = data[0]
        found["_timescale"] = struct.unpack(">I", data[20:24] if version == 1 else data[12:16])[0]
    elif kind == b"stsd" and len(data) >= 16:
        found["codec"] = {"avc1": "h264", "avc3": "h264", "hvc1": "hevc", "hev1": "hevc",
                          "vp09": "vp9", "av01": "av1"}.get(data[12:16].decode("latin-1"),
                                                             data[12:16].decode("latin-1"))
    elif kind == b"stts" and len(data) >= 16:
        entries = struct.unpack(">I", data[4:8])[0]
        samples = sum(struct.unpack(">II", data[8 + 8 * i:16 + 8 * i])[0]
                      for i in range(min(entries, (len(data) - 8) // 8)))
        ticks = sum(c * d for c, d in (struct.unpack(">II", data[8 + 8 * i:16 + 8 * i])
                                       for i in range(min(entries, (len(data) - 8) // 8))))
        scale = found.pop("_timescale", None)
        if isinstance(scale, int) and ticks and samples:
            found["fps"] = round(samples * scale / ticks, 3)
