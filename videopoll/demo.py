"""``videopoll run-demo``: bring up the Procfile stack on offline defaults and run one job.

The defaults point every provider adapter at the bundled fake provider, store videos in S3 served by
moto on loopback, send Telegram messages to the bundled fake Bot API, and call back a local
listener, so the demo needs no API key and no network, and shows all that a real user would
get: the S3 key, the Telegram message with its buttons, the signed callback.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
from standardwebhooks import Webhook

from videopoll.fake_provider import fake_env

TERMINAL = {"succeeded", "failed", "canceled"}
DEMO_BUCKET = "videopoll-demo"
DEMO_SECRET = "whsec_ZGVtby1zZWNyZXQtZm9yLWNhbGxiYWNrcw=="  # demo only: set your own
DEMO_AWS = {"AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo",
            "AWS_DEFAULT_REGION": "us-east-1"}
DEMO_CHAT = 424242


def demo_env(base: dict[str, str]) -> dict[str, str]:
    env = dict(base)
    fake_port = env.setdefault("FAKE_PROVIDER_PORT", "8099")
    # every provider family points at the one fake server (KIE_BASE_URL, OPENAI_BASE_URL, …)
    for key, value in fake_env(f"http://127.0.0.1:{fake_port}").items():
        env.setdefault(key, value)
    env.setdefault("POLL_INTERVAL_SECONDS", "2")
    env.setdefault("SWEEP_INTERVAL_SECONDS", "5")
    env.setdefault("SWEEP_GRACE_SECONDS", "10")
    env.setdefault("ALLOW_PRIVATE_URLS", "true")
    env.setdefault("STATE_DIR", str(Path("var").resolve()))
    s3_port = env.setdefault("S3_PORT", "5005")
    env.setdefault("STORAGE_URL", f"s3://{DEMO_BUCKET}")
    env.setdefault("S3_ENDPOINT_URL", f"http://127.0.0.1:{s3_port}")
    for key, value in DEMO_AWS.items():
        env.setdefault(key, value)
    tg_port = env.setdefault("FAKE_TELEGRAM_PORT", "8081")
    env.setdefault("TELEGRAM_API_URL", f"http://127.0.0.1:{tg_port}")
    env.setdefault("TELEGRAM_BOT_TOKEN", "123456:demo-token")
    env.setdefault("NOTIFIERS", "console,telegram")
    env.setdefault("CALLBACK_SECRET", DEMO_SECRET)
    env.setdefault("PUBLIC_BASE_URL", f"http://127.0.0.1:{env.get('API_PORT', '8000')}")
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
    print("starting web, worker, beat, flower, the fake provider, S3 (moto) and the fake "
          f"Telegram Bot API (logs: {log_path})",
          flush=True)
    with open(log_path, "ab") as log:
        stack = subprocess.Popen(  # restarts a process that dies; see videopoll.supervise
            [sys.executable, "-m", "videopoll.supervise", "-f", procfile], env=env,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    callbacks = CallbackListener()
    try:
        wait_healthy(api)
        prepare_bucket(env)
        body = {"sessionId": "demo_user", "model": "veo3_fast", "aspectRatio": "16:9",
                "prompt": "A paper boat sails across a rainy street (ok3)",
                "chatId": DEMO_CHAT, "callbackUrl": callbacks.url}
        accepted = requests.post(f"{api}/jobs", json=body, timeout=5).json()
        print(f"\nsubmitted {accepted['jobId']} -> {accepted['status']}", flush=True)
        final = follow(api, accepted["jobId"])
        print(f"\nresult: {final['status']}  video: {final['outputUrl']}", flush=True)
        show_delivery(env, accepted["jobId"], callbacks)
        print(f"\nstack running: API {api}  Flower http://127.0.0.1:"
              f"{env.get('FLOWER_PORT', '5555')}  (Ctrl-C stops everything)", flush=True)
        if exit_after:
            return 0 if final["status"] == "succeeded" else 1
        return stack.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        callbacks.stop()
        stop(stack)


def prepare_bucket(env: dict[str, str]) -> None:
    """The demo's S3 is moto on loopback, empty at start: make its bucket."""
    if not env["STORAGE_URL"].startswith("s3://"):
        return
    bucket, client = _s3(env)
    deadline = time.monotonic() + 30
    while True:
        try:
            client.create_bucket(Bucket=bucket)
            return
        except client.exceptions.BucketAlreadyOwnedByYou:
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _s3(env: dict[str, str]) -> tuple[str, Any]:
    import boto3

    bucket = env["STORAGE_URL"].removeprefix("s3://").split("/")[0]
    return bucket, boto3.client(
        "s3", endpoint_url=env.get("S3_ENDPOINT_URL"),
        aws_access_key_id=env.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"),
        region_name=env.get("AWS_DEFAULT_REGION", "us-east-1"))


def show_delivery(env: dict[str, str], job_id: str, callbacks: CallbackListener) -> None:
    """Print what a real user and caller would have received."""
    if env["STORAGE_URL"].startswith("s3://"):
        bucket, client = _s3(env)
        keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])
                if job_id in o["Key"]]
        print(f"S3 object:  s3://{bucket}/{keys[0] if keys else '(none)'}", flush=True)
    try:
        calls = requests.get(f"{env['TELEGRAM_API_URL']}/_fake/calls", timeout=5).json()
    except (requests.RequestException, ValueError):
        calls = []
    for call in calls:
        if call.get("method") in ("sendVideo", "sendMessage"):
            markup = json.loads(call.get("reply_markup") or '{"inline_keyboard": [[]]}')
            buttons = " ".join(f"[{b['text']}]" for b in markup["inline_keyboard"][0])
            text = call.get("caption") or call.get("text")
            print(f"Telegram:   {call['method']} to chat {call['chat_id']}: {text} {buttons}",
                  flush=True)
    deadline = time.monotonic() + 10
    while not callbacks.received and time.monotonic() < deadline:
        time.sleep(0.2)
    for headers, body in callbacks.received:
        try:
            payload = Webhook(env["CALLBACK_SECRET"]).verify(body, headers)
            verdict = "signature verified"
        except Exception:
            payload, verdict = json.loads(body or b"{}"), "signature NOT verified"
        print(f"callback:   {payload.get('type')} for {payload['data']['jobId']} ({verdict})",
              flush=True)


class CallbackListener:
    """Stands in for the n8n Wait node's resume URL: records what it is sent."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                listener.received.append((dict(self.headers.items()), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/resume"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


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
