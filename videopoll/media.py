"""Read a stored video's duration, resolution, codec, fps and size, for captions and analytics.

``ffprobe`` is used when it is installed (``make`` installs ffmpeg where it is missing); it
reads local files and http(s) links (a presigned S3 GET) alike. It is held to MP4, Matroska
and WebM demuxers and to the file or web protocols: a "video" that is really a playlist would
otherwise make it fetch whatever the playlist names, private addresses included.

Without ffprobe a small MP4 box reader answers, for files and for links (by HTTP Range
requests, so a link costs a few small reads, never the whole video): ``moov/mvhd`` for the
duration, the video track's ``tkhd`` for the size, ``mdhd`` and ``stts`` for the frame rate,
``stsd`` for the codec. Only those boxes are read; the movie data is skipped. Anything
neither can read yields a ``MediaInfo`` with only the size: metadata never fails a delivery.
"""

from __future__ import annotations

import io
import json
import shutil
import struct
import subprocess
from pathlib import Path
from typing import IO

import requests
from pydantic import BaseModel

PROBE_TIMEOUT_SECONDS = 30.0
FORMATS = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm"  # demuxers ffprobe may use
CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"mvex"}
LEAVES = {b"mvhd", b"tkhd", b"hdlr", b"mdhd", b"stsd", b"stts", b"mehd"}
MAX_LEAF_BYTES = 4 * 1024 * 1024  # a long variable-rate stts; everything else is tiny
MAX_BOXES = 10_000
RANGE_BUFFER_BYTES = 256 * 1024
MAX_RANGE_REQUESTS = 32
CODECS = {"avc1": "h264", "avc3": "h264", "hvc1": "hevc", "hev1": "hevc", "vp09": "vp9",
          "av01": "av1"}


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


def probe(target: str, size_bytes: int | None = None,
          timeout: float = PROBE_TIMEOUT_SECONDS) -> MediaInfo:
    """What ``target`` (a local path or an http(s) URL) holds; never raises."""
    is_url = target.startswith(("http://", "https://"))
    if shutil.which("ffprobe"):
        info = _ffprobe(target, is_url, timeout)
        if info is not None:
            return info.model_copy(update={"size_bytes": info.size_bytes or size_bytes})
    try:
        if is_url:
            with RangeReader(target, timeout) as raw:
                info = read_mp4(io.BufferedReader(raw, RANGE_BUFFER_BYTES))
                return info.model_copy(update={"size_bytes": raw.size})
        path = Path(target)
        if path.is_file():
            with path.open("rb") as fh:
                info = read_mp4(fh)
            return info.model_copy(update={"size_bytes": path.stat().st_size})
    except (OSError, requests.RequestException):
        pass
    return MediaInfo(size_bytes=size_bytes)


def _ffprobe(target: str, is_url: bool, timeout: float) -> MediaInfo | None:
    protocols = "http,https,tcp,tls" if is_url else "file"
    source = target if is_url else f"file:{Path(target).resolve()}"  # never read as a protocol
    try:
        done = subprocess.run(
            ["ffprobe", "-v", "error", "-protocol_whitelist", protocols,
             "-format_whitelist", FORMATS, "-print_format", "json", "-show_format",
             "-show_streams", source],
            capture_output=True, timeout=timeout, check=False)
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


class RangeReader(io.RawIOBase):
    """A URL as a seekable file, through HTTP Range GETs (S3 and CDNs honour them)."""

    def __init__(self, url: str, timeout: float) -> None:
        super().__init__()
        self.url, self.timeout, self.pos, self.calls = url, timeout, 0, 0
        self.http = requests.Session()
        self.size = 0
        first = self._get(0, 0)
        total = first.headers.get("Content-Range", "").rpartition("/")[2]
        if not total.isdigit():
            raise OSError("no Content-Range total: the server ignores ranges")
        self.size = int(total)

    def _get(self, start: int, end: int) -> requests.Response:
        self.calls += 1
        if self.calls > MAX_RANGE_REQUESTS:
            raise OSError("too many range requests")
        resp = self.http.get(self.url, headers={"Range": f"bytes={start}-{end}"}, stream=True,
                             timeout=(min(self.timeout, 10.0), self.timeout))
        if resp.status_code != 206:  # 200 would be the whole video: never read it
            resp.close()
            raise OSError(f"range request answered HTTP {resp.status_code}")
        return resp

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        end = min(self.pos + len(buffer), self.size)
        if end <= self.pos:
            return 0
        with self._get(self.pos, end - 1) as resp:
            data = resp.raw.read(end - self.pos, decode_content=True) or b""
        buffer[:len(data)] = data
        self.pos += len(data)
        return len(data)

    def close(self) -> None:
        self.http.close()
        super().close()


def read_mp4(fh: IO[bytes]) -> MediaInfo:
    """The pure-Python fallback: walk the MP4 boxes that hold what we report."""
    try:
        found: dict[str, object] = {"_boxes": 0}
        _walk(fh, 0, _size(fh), found)
    except (struct.error, ValueError, KeyError):
        return MediaInfo()
    duration = found.get("duration_seconds") or found.get("_fragments_seconds")
    fields = {k: v for k, v in found.items() if not k.startswith("_")}
    return MediaInfo.model_validate({**fields, "duration_seconds": duration or None,
                                     "probed_by": "mp4-reader"})


def _size(fh: IO[bytes]) -> int:
    end = fh.seek(0, io.SEEK_END)
    fh.seek(0)
    return end


def _walk(fh: IO[bytes], start: int, end: int, found: dict[str, object]) -> None:
    offset = start
    while offset + 8 <= end:
        found["_boxes"] = int(str(found["_boxes"])) + 1
        if int(str(found["_boxes"])) > MAX_BOXES:
            raise ValueError("too many boxes")
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
            track: dict[str, object] = {"_boxes": found["_boxes"]}
            _walk(fh, body, offset + size, track)
            found["_boxes"] = track.pop("_boxes")
            if track.pop("is_video", False):
                found.update({k: v for k, v in track.items()
                              if k not in found and not k.startswith("_")})
        elif kind in CONTAINERS:
            _walk(fh, body, offset + size, found)
        elif kind in LEAVES:
            _leaf(kind, fh.read(min(size - header, MAX_LEAF_BYTES)), found)
        offset += size


def _leaf(kind: bytes, data: bytes, found: dict[str, object]) -> None:
    version = data[0]
    if kind == b"mvhd":
        scale, duration = (struct.unpack(">IQ", data[20:32]) if version == 1
                           else struct.unpack(">II", data[12:20]))
        found["_movie_scale"] = scale
        if scale and duration:
            found.setdefault("duration_seconds", round(duration / scale, 3))
    elif kind == b"mehd":  # a fragmented file's total, when its writer knew it
        span = struct.unpack(">Q" if version == 1 else ">I", data[4:12 if version == 1 else 8])
        scale = found.get("_movie_scale")
        if isinstance(scale, int) and scale and span[0]:
            found["_fragments_seconds"] = round(span[0] / scale, 3)
    elif kind == b"tkhd":
        width, height = struct.unpack(">II", data[-8:])
        found["width"], found["height"] = width >> 16, height >> 16
    elif kind == b"hdlr":
        found["is_video"] = data[8:12] == b"vide"
    elif kind == b"mdhd":
        found["_timescale"] = struct.unpack(">I", data[20:24] if version == 1 else data[12:16])[0]
    elif kind == b"stsd" and len(data) >= 16:
        fourcc = data[12:16].decode("latin-1")
        found["codec"] = CODECS.get(fourcc, fourcc)
    elif kind == b"stts" and len(data) >= 8:
        count = min(struct.unpack(">I", data[4:8])[0], (len(data) - 8) // 8)
        runs = struct.iter_unpack(">II", data[8:8 + 8 * count])
        samples = ticks = 0
        for run, delta in runs:
            samples, ticks = samples + run, ticks + run * delta
        scale = found.pop("_timescale", None)
        if isinstance(scale, int) and ticks and samples:
            found["fps"] = round(samples * scale / ticks, 3)
