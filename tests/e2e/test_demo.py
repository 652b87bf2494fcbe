"""``make run``'s promise: the offline stack runs a job end to end and Ctrl-C leaves nothing."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import alive
from videopoll.local_redis import free_port

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def start_demo(
    redis_url: str, state_dir: Path
) -> tuple[subprocess.Popen[str], dict[str, int], str]:
    """Start ``videopoll run-demo`` on free ports; return it, its ports and its output so far
    (up to the "stack running" line, i.e. after the demo job ended)."""
    ports = {name: free_port() for name in ("API_PORT", "FLOWER_PORT", "FAKE_PROVIDER_PORT",
                                            "S3_PORT", "FAKE_TELEGRAM_PORT")}
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST", "AWS_", "STORAGE_", "S3_", "TELEGRAM_"))}
    env.update({k: str(v) for k, v in ports.items()})
    env.update(REDIS_URL=redis_url, STATE_DIR=str(state_dir), POLL_INTERVAL_SECONDS="0.5",
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
    return demo, ports, "".join(lines)


def started_pids(state_dir: Path, name: str) -> list[int]:
    """Pids the supervisor logged for each start of process ``name``."""
    log = (state_dir / "stack.log").read_text()
    return [int(pid) for pid in re.findall(rf"\| {name}(?:\.1)? started \(pid=(\d+)\)", log)]


@pytest.mark.slow
def test_run_demo_delivers_then_ctrl_c_stops_everything(
    redis_server: str, tmp_path: Path
) -> None:
    demo, ports, output = start_demo(f"{redis_server}/14", tmp_path)
    try:
        assert "succeeded   Your video is ready." in output, output
        assert "running     Your video is being generated." in output, output
        # what a real user and caller get, shown offline: S3 key, Telegram message, callback
        assert re.search(
            r"S3 object:  s3://videopoll-demo/videos/veo3_fast/\d{4}/\d{2}/job_\w+\.mp4",
            output), output
        assert "Telegram:   sendVideo to chat 424242: veo3_fast" in output, output
        assert "[Publish] [Regenerate] [Extend] [Get 1080p] [Get 4K]" in output, output
        assert re.search(r"callback:   video.succeeded for job_\w+ \(signature verified\)",
                         output), output
        assert all(listening(p) for p in ports.values())
    finally:  # stop the stack even when an assertion above failed: never leak processes
        demo.send_signal(signal.SIGINT)  # what Ctrl-C sends
        assert demo.wait(timeout=40) == 0

    time.sleep(0.5)
    assert not any(listening(p) for p in ports.values())
    leftover = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True)
    assert leftover.stdout.strip() == "", leftover.stdout


@pytest.mark.slow
def test_run_demo_restarts_a_worker_killed_with_sigkill(redis_server: str, tmp_path: Path) -> None:
    """One process dying no longer stops the stack: it comes back and jobs still finish."""
    demo, ports, output = start_demo(f"{redis_server}/13", tmp_path)
    try:
        assert "stack running" in output, output
        [worker] = started_pids(tmp_path, "worker")
        others = {name: started_pids(tmp_path, name) for name in ("web", "beat", "fake")}

        os.kill(worker, signal.SIGKILL)

        deadline = time.monotonic() + 60
        while len(started_pids(tmp_path, "worker")) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(started_pids(tmp_path, "worker")) == 2, (tmp_path / "stack.log").read_text()
        assert {name: started_pids(tmp_path, name) for name in others} == others
        api = f"http://127.0.0.1:{ports['API_PORT']}"
        body = {"sessionId": "u", "model": "veo3_fast", "prompt": "after the crash (ok2)"}
        job_id = requests.post(f"{api}/jobs", json=body, timeout=10).json()["jobId"]
        view: dict[str, object] = {}
        while time.monotonic() < deadline + 60:
            view = requests.get(f"{api}/jobs/{job_id}", timeout=10).json()
            if view["status"] in {"succeeded", "failed", "canceled"}:
                break
            time.sleep(0.3)
        assert view["status"] == "succeeded", view
    finally:
        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=40) == 0
    time.sleep(0.5)
    everything = [pid for name in ("web", "worker", "beat", "flower", "fake")
                  for pid in started_pids(tmp_path, name)]
    assert not [pid for pid in everything if alive(pid)]
    assert not any(listening(p) for p in ports.values())
