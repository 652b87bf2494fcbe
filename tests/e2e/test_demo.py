"""``make run``'s promise: the offline stack runs a job end to end and Ctrl-C leaves nothing."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from videopoll.local_redis import free_port

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow
def test_run_demo_delivers_then_ctrl_c_stops_everything(
    redis_server: str, tmp_path: Path
) -> None:
    ports = {"API_PORT": free_port(), "FLOWER_PORT": free_port(), "FAKE_PROVIDER_PORT": free_port()}
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update({k: str(v) for k, v in ports.items()})
    env.update(REDIS_URL=f"{redis_server}/14", STATE_DIR=str(tmp_path),
               STORAGE_URL=(tmp_path / "videos").as_uri(), POLL_INTERVAL_SECONDS="0.5",
               PYTHONPATH=str(REPO))
    demo = subprocess.Popen([str(BIN / "videopoll"), "run-demo"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    deadline = time.monotonic() + 120
    assert demo.stdout is not None
    while time.monotonic() < deadline:
        line = demo.stdout.readline()
        lines.append(line)
        if "stack running" in line or not line:
            break
    output = "".join(lines)
    assert "succeeded   Your video is ready." in output, output
    assert "running     Your video is being generated." in output, output
    videos = list((tmp_path / "videos").glob("*.mp4"))
    assert len(videos) == 1 and videos[0].stat().st_size > 0
    assert all(listening(p) for p in ports.values())

    demo.send_signal(signal.SIGINT)  # what Ctrl-C sends
    assert demo.wait(timeout=40) == 0

    time.sleep(0.5)
    assert not any(listening(p) for p in ports.values())
    leftover = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True)
    assert leftover.stdout.strip() == "", leftover.stdout
