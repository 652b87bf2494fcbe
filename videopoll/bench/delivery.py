"""Figure 5: a 200 MB video from a URL into S3 (moto), against a raw streamed copy.

Ours is the delivery path itself: ``download.stream`` (guarded, bounded) into
``S3Storage.put_stream`` (8 MiB multipart parts). The floor is the plainest streamed copy of
the same URL into the same bucket: ``requests`` with ``stream=True`` handed to boto3's
``upload_fileobj``. Each runs in a child process of its own (``python -m
videopoll.bench.delivery ours|raw URL S3``) that reports its time and how far its resident
memory rose above where it stood before the transfer: flat means a few parts, not the video.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from videopoll.bench.procs import BIN, REPO, answers, processes, wait_until
from videopoll.bench.report import Row, below, ratio_at_least
from videopoll.local_redis import free_port

SIZE = 200 * 1024 * 1024
BUCKET = "bench"
MB = 1024 * 1024
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
               "AWS_DEFAULT_REGION": "us-east-1"}


def measure(redis_url: str, workdir: Path) -> tuple[list[Row], dict[str, object]]:
    video = workdir / "video.mp4"
    block = os.urandom(MB)
    with open(video, "wb") as out:
        for _ in range(SIZE // MB):
            out.write(block)
    with processes(CREDENTIALS, workdir) as tree:
        s3 = tree.moto()
        port = free_port()
        tree.spawn("source", [sys.executable, "-m", "http.server", "--bind", "127.0.0.1",
                              "--directory", str(workdir), str(port)])
        url = f"http://127.0.0.1:{port}/video.mp4"
        wait_until(lambda: answers(url.rsplit("/", 1)[0] + "/"), 30, "the video's server")
        import boto3

        boto3.client("s3", endpoint_url=s3, region_name="us-east-1",
                     aws_access_key_id="bench", aws_secret_access_key="bench",
                     ).create_bucket(Bucket=BUCKET)
        runs: dict[str, list[dict[str, float]]] = {"raw": [], "ours": []}
        for mode in ("raw", "ours") * 3:  # best of three each: moto is noisy
            runs[mode].append(_child(mode, url, s3, tree.env))
    raw = min(runs["raw"], key=lambda r: r["seconds"])
    ours = min(runs["ours"], key=lambda r: r["seconds"])
    rate = {k: SIZE / MB / r["seconds"] for k, r in (("raw", raw), ("ours", ours))}
    rows = [
        Row("delivery", "200 MB into S3", rate["ours"], "MB/s", rate["raw"],
            "raw streamed copy", "≥ 0.7x", ratio_at_least(0.7)),
        Row("delivery", "RSS growth during the copy", ours["rss_growth"] / MB, "MB",
            raw["rss_growth"] / MB, "raw streamed copy", "flat (< 64 MB)", below(64.0)),
    ]
    return rows, {"raw": runs["raw"], "ours": runs["ours"]}


def _child(mode: str, url: str, s3: str, env: dict[str, str]) -> dict[str, float]:
    out = subprocess.run([str(BIN / "python"), "-m", "videopoll.bench.delivery", mode, url, s3],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
                         check=True).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def _memory(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def copy(mode: str, url: str, s3: str) -> dict[str, float]:
    """One transfer in this process: seconds, bytes, and the rise of resident memory."""
    import boto3
    import requests
    from boto3.s3.transfer import TransferConfig

    from videopoll.download import stream
    from videopoll.storage import PART_BYTES, build_storage

    storage = build_storage(f"s3://{BUCKET}/videos", endpoint_url=s3)
    client = boto3.client("s3", endpoint_url=s3)
    client.head_bucket(Bucket=BUCKET)  # connections and credentials ready before the clock
    key = f"{mode}-{time.time_ns()}.mp4"
    before = _memory("VmRSS")
    began = time.perf_counter()
    if mode == "ours":
        storage.put_stream(key, stream(url, 2 * SIZE, 300, True), {"job-id": "bench"})
    else:
        with requests.get(url, stream=True, timeout=60) as resp:
            client.upload_fileobj(resp.raw, BUCKET, f"videos/{key}",
                                  Config=TransferConfig(multipart_chunksize=PART_BYTES))
    seconds = time.perf_counter() - began
    size = client.head_object(Bucket=BUCKET, Key=f"videos/{key}")["ContentLength"]
    client.delete_object(Bucket=BUCKET, Key=f"videos/{key}")
    return {"seconds": seconds, "bytes": size, "rss_growth": _memory("VmHWM") - before}


if __name__ == "__main__":
    print(json.dumps(copy(*sys.argv[1:4])))
