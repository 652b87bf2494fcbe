"""``videopoll run-demo``: bring up the Procfile stack on offline defaults and run one job.

The defaults point the KIE adapters at the bundled fake provider, store videos under
``var/videos`` and notify on the console, so the demo needs no API key and no network.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

TERMINAL = {"succeeded", "failed", "canceled"}


def demo_env(base: dict[str, str]) -> dict[str, str]:
    env = dict(base)
    fake_port = env.setdefault("FAKE_PROVIDER_PORT", "8099")
    env.setdefault("KIE_BASE_URL", f"http://127.0.0.1:{fake_port}")
    env.setdefault("POLL_INTERVAL_SECONDS", "2")
    env.setdefault("SWEEP_INTERVAL_SECONDS", "5")
    env.setdefault("SWEEP_GRACE_SECONDS", "10")
    env.setdefault("ALLOW_PRIVATE_URLS", "true")
    env.setdefault("STATE_DIR", str(Path("var").resolve()))
    env.setdefault("STORAGE_URL", Path("var/videos").resolve().as_uri())
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def wait_healthy(api: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{api}/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the API at {api} did not become healthy in {timeout:.0f}s")


def follow(api: str, job_id: str, timeout: float = 300.0) -> dict[str, Any]:
    """Print each status change of ``job_id`` until it ends; return the final view."""
    last = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        view: dict[str, Any] = requests.get(f"{api}/jobs/{job_id}", timeout=5).json()
        if view["status"] != last:
            last = view["status"]
            print(f"  {time.strftime('%H:%M:%S')}  {last:<10}  {view['message']}", flush=True)
        if last in TERMINAL:
            return view
        time.sleep(0.3)
    raise RuntimeError(f"job {job_id} did not finish in {timeout:.0f}s")


def run_demo(procfile: str, exit_after: bool) -> int:
    env = demo_env(dict(os.environ))
    api = f"http://127.0.0.1:{env.get('API_PORT', '8000')}"
    Path(env["STATE_DIR"]).mkdir(parents=True, exist_ok=True)
    log_path = Path(env["STATE_DIR"]) / "stack.log"
    print(f"starting web, worker, beat, flower and the fake provider (logs: {log_path})",
          flush=True)
    with open(log_path, "ab") as log:
        stack = subprocess.Popen(  # restarts a process that dies; see videopoll.supervise
            [sys.executable, "-m", "videopoll.supervise", "-f", procfile], env=env,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        wait_healthy(api)
        body = {"sessionId": "demo_user", "model": "veo3_fast", "aspectRatio": "16:9",
                "prompt": "A paper boat sails across a rainy street (ok3)"}
        accepted = requests.post(f"{api}/jobs", json=body, timeout=5).json()
        print(f"\nsubmitted {accepted['jobId']} -> {accepted['status']}", flush=True)
        final = follow(api, accepted["jobId"])
        print(f"\nresult: {final['status']}  video: {final['outputUrl']}", flush=True)
        print(f"\nstack running: API {api}  Flower http://127.0.0.1:"
              f"{env.get('FLOWER_PORT', '5555')}  (Ctrl-C stops everything)", flush=True)
        if exit_after:
            return 0 if final["status"] == "succeeded" else 1
        return stack.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        stop(stack)


def stop(stack: subprocess.Popen[bytes]) -> None:
    """Stop the stack: the supervisor stops each process's group (SIGTERM, then SIGKILL after
    15 s); SIGKILL the supervisor only if it hangs past that."""
    try:
        os.killpg(stack.pid, signal.SIGTERM)
        stack.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(stack.pid, signal.SIGKILL)
        stack.wait()
    except ProcessLookupError:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(stack.pid, signal.SIGKILL)  # anything a child left behind in the group
