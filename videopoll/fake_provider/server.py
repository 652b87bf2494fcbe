"""A KIE.ai-compatible HTTP server on 127.0.0.1 for the offline demo and the e2e tests.

It speaks the Veo (``/api/v1/veo/*``) and Market (``/api/v1/jobs/*``) endpoints in the shapes
of providers.md, serves a real MP4 at each result URL, and counts calls at ``/_fake/stats``.
Standard library only, so it runs wherever the package does.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import secrets
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from videopoll.fake_provider.scenarios import Scenario, parse_scenario, step_for
from videopoll.local_server import BackgroundServer, serve_until_stopped
from videopoll.providers.kie_common import sign_callback

log = logging.getLogger(__name__)
SAMPLE_MP4 = Path(__file__).with_name("sample.mp4")
MODERATION_MSG = "Your prompt was flagged by Website as violating content policies."


class FakeState:
    """Per-task poll counters and call statistics, shared by the handler threads."""

    def __init__(self, api_key: str | None) -> None:
        self.api_key = api_key
        self.webhook_key: str | None = None  # signs callbacks like KIE's webhookHmacKey
        self.callback_delay = 1.0  # seconds from submit until the task finishes and calls back
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with getattr(self, "lock", threading.Lock()):
            self.polls: dict[str, int] = {}
            self.downloads: dict[str, int] = {}
            self.submits = 0
            self.prompts: dict[str, str] = {}
            self.finished: set[str] = set()  # tasks that called back: their next poll is final
            self.callbacks: dict[str, int] = {}  # task -> HTTP status our callback got

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {"polls": dict(self.polls), "downloads": dict(self.downloads),
                    "submits": self.submits, "total_polls": sum(self.polls.values()),
                    "callbacks": dict(self.callbacks)}


def _kie(code: int, msg: str, data: Any = None) -> dict[str, Any]:
    return {"code": code, "msg": msg, "data": data}


class Handler(BaseHTTPRequestHandler):
    server: FakeServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)

    # plumbing ---------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, ctype: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), headers=headers)

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            data = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def _authorized(self) -> bool:
        key = self.server.state.api_key
        return key is None or self.headers.get("Authorization") == f"Bearer {key}"

    # routes -----------------------------------------------------------------------------
    def do_GET(self) -> None:
        url = urlparse(self.path)
        task_id = parse_qs(url.query).get("taskId", [""])[0]
        if url.path == "/_fake/stats":
            return self._json(self.server.state.stats())
        if url.path.startswith("/files/") and url.path.endswith(".mp4"):
            return self._file(url.path[len("/files/"):-len(".mp4")])
        if url.path.startswith("/api/") and not self._authorized():
            return self._json(_kie(401, "You do not have access permissions"))
        if url.path == "/api/v1/veo/record-info":
            return self._poll(task_id, veo=True)
        if url.path == "/api/v1/jobs/recordInfo":
            return self._poll(task_id, veo=False)
        if url.path == "/api/v1/veo/get-1080p-video":
            return self._hd(task_id)
        if url.path == "/api/v1/chat/credit":
            return self._json(_kie(200, "success", 100))
        self._json(_kie(404, "not found"), status=404)

    def do_POST(self) -> None:
        path = urlparse(self.path).path
        if path == "/_fake/reset":
            self.server.state.reset()
            return self._json({"ok": True})
        if path.startswith("/api/") and not self._authorized():
            return self._json(_kie(401, "You do not have access permissions"))
        body = self._body()
        if path == "/api/v1/veo/generate":
            return self._submit("veo", str(body.get("prompt") or ""), body.get("callBackUrl"))
        if path == "/api/v1/veo/extend":  # providers.md §1.8: a new task, stitched result
            if not str(body.get("taskId") or "").strip():
                return self._json(_kie(422, "taskId is required"))
            return self._submit("veo", f"stitched {body.get('prompt') or ''}")
        if path == "/api/v1/jobs/createTask":
            data = body.get("input")
            data = data if isinstance(data, dict) else {}
            if not body.get("model"):
                return self._json(_kie(422, "model is required"))
            return self._submit("market", str(data.get("prompt") or ""), body.get("callBackUrl"))
        self._json(_kie(404, "not found"), status=404)

    def _submit(self, kind: str, prompt: str, callback_url: Any = None) -> None:
        if not prompt.strip():
            return self._json(_kie(422, "prompt is required"))
        scenario = parse_scenario(prompt)
        if scenario.name == "maintenance":  # refused before any task exists
            return self._json(_kie(455, "Service unavailable"))
        task_id = f"{kind}_{scenario.token}_{secrets.token_hex(4)}"
        with self.server.state.lock:
            self.server.state.submits += 1
            self.server.state.prompts[task_id] = prompt
        if scenario.name == "lostreply":  # created, then the answer is an error page
            return self._json(_kie(500, "Server Error"), status=500)
        if scenario.name == "slowreply":  # created, answered after the caller gave up
            time.sleep(scenario.n)
        with contextlib.suppress(OSError):  # the caller may be gone (slowreply)
            self._json(_kie(200, "success", {"taskId": task_id}))
        if isinstance(callback_url, str) and callback_url.startswith("http"):
            threading.Thread(target=self._call_back, args=(task_id, kind, callback_url),
                             daemon=True).start()

    def _call_back(self, task_id: str, kind: str, callback_url: str) -> None:
        """Finish the task after ``callback_delay`` and POST the documented callback (§1.4,
        §2.3), signed as KIE signs it (§1.5) when a webhook key is set."""
        state = self.server.state
        time.sleep(state.callback_delay)
        with state.lock:
            state.finished.add(task_id)
        scenario = parse_scenario(task_id)
        step = step_for(scenario, scenario.n + 1).kind
        url = f"{self.server.base_url}/files/{task_id}.mp4"
        if kind == "veo":
            body = (_kie(200, "Veo3.1 video generated successfully.",
                         {"taskId": task_id, "info": {"resultUrls": [url]}, "fallbackFlag": False})
                    if step in ("success", "stitched") else
                    _kie(400, MODERATION_MSG, {"taskId": task_id, "fallbackFlag": False}))
        else:
            ok = step in ("success", "stitched", "objresult")
            body = _kie(200 if ok else 501, "Playground task completed successfully." if ok
                        else "Playground task failed.", _market_record(task_id, step, url, 9))
        headers = {"Content-Type": "application/json"}
        if state.webhook_key:
            stamp = str(int(time.time()))
            signature = sign_callback(state.webhook_key, task_id, stamp)
            headers.update({"X-Webhook-Timestamp": stamp, "X-Webhook-Signature": signature})
        request = urllib.request.Request(callback_url, data=json.dumps(body).encode(),
                                         headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=15) as answer:
                status = answer.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except OSError:
            status = 0
        with state.lock:
            state.callbacks[task_id] = status

    def _hd(self, task_id: str) -> None:
        """§1.6: "may return a non-200 code" while the 1080p version is being made (~1-3 min)."""
        key = f"hd:{task_id}"
        with self.server.state.lock:
            k = self.server.state.polls[key] = self.server.state.polls.get(key, 0) + 1
        if k <= 2:
            return self._json(_kie(400, "1080P is processing. It should be ready in 1-2 "
                                        "minutes. Please check back shortly."))
        url = f"{self.server.base_url}/files/{task_id}_1080p.mp4"
        self._json(_kie(200, "success", {"resultUrl": url}))

    def _file(self, task_id: str) -> None:
        with self.server.state.lock:
            self.server.state.downloads[task_id] = self.server.state.downloads.get(task_id, 0) + 1
        if parse_scenario(task_id).name == "gone":  # an expired result link
            return self._send(404, b"<Error><Code>NoSuchKey</Code></Error>", "application/xml")
        self._send(200, SAMPLE_MP4.read_bytes(), ctype="video/mp4")

    def _poll(self, task_id: str, veo: bool) -> None:
        if not task_id:
            return self._json(_kie(400, "taskId parameter is required"))
        state = self.server.state
        scenario = parse_scenario(task_id)
        with state.lock:
            k = state.polls[task_id] = state.polls.get(task_id, 0) + 1
            if task_id in state.finished:  # it called back: it is done now
                k = max(k, scenario.n + 1)
        step = step_for(scenario, k).kind
        if step == "http500":
            return self._json(_kie(500, "Server Error"), status=500)
        if step == "html502":
            return self._send(502, b"<html><body>Bad Gateway</body></html>", "text/html")
        if step == "garbage":
            return self._send(200, b"not json{{", "text/plain")
        if step == "ratelimited":
            return self._json(_kie(429, "Rate limit exceeded"), status=429,
                              headers={"Retry-After": "1"})
        if step == "auth":
            return self._json(_kie(401, "You do not have access permissions"))
        if step == "notfound":  # each family's documented "unknown task" answer
            return self._json(_kie(422, "record is null.") if veo else _kie(404, "Task not found"))
        if step == "expired":
            return self._json(_kie(422, "Temporarily supports records within 14 days."))
        url = f"{self.server.base_url}/files/{task_id}.mp4"
        record = _veo_record(task_id, step, url) if veo else _market_record(task_id, step, url, k)
        self._json(_kie(200, "success", record))


def _veo_record(task_id: str, step: str, url: str) -> dict[str, Any]:
    record: dict[str, Any] = {
        "taskId": task_id, "paramJson": json.dumps({"prompt": "…"}), "completeTime": None,
        "response": None, "successFlag": 0, "errorCode": None, "errorMessage": None,
        "createTime": "2026-11-22 10:25:00", "fallbackFlag": False,
    }
    if step in ("success", "nourl", "objresult"):
        urls = [url] if step != "nourl" else []
        record.update(successFlag=1, completeTime="2026-11-22 10:30:00", errorMessage="",
                      response={"taskId": task_id, "resultUrls": urls, "resolution": "720p"})
    elif step == "stitched":  # an extend task: the new segment, and the whole video
        segment = url.replace(".mp4", "_segment.mp4")
        record.update(successFlag=1, completeTime="2026-11-22 10:30:00", errorMessage="",
                      response={"taskId": task_id, "resultUrls": [segment],
                                "fullResultUrls": [url], "resolution": "720p"})
    elif step == "moderation":
        record.update(successFlag=2, errorCode=400, errorMessage=MODERATION_MSG)
    elif step == "upstream":
        record.update(successFlag=3, errorCode=501,
                      errorMessage="Failed - Video generation task failed")
    return record


def _market_record(task_id: str, step: str, url: str, k: int) -> dict[str, Any]:
    now = int(time.time() * 1000)
    record: dict[str, Any] = {
        "taskId": task_id, "model": "sora-2-text-to-video", "state": "generating",
        "param": json.dumps({"model": "sora-2-text-to-video", "input": {"prompt": "…"}}),
        "resultJson": "", "failCode": "", "failMsg": "", "createTime": now - 5000,
        "updateTime": now, "progress": min(95, 30 * k),
    }
    if step in ("success", "nourl", "stitched", "objresult"):
        urls = [url] if step != "nourl" else []
        result = {"resultUrls": urls}
        record.update(state="success", completeTime=now, costTime=5000, progress=100,
                      resultJson=result if step == "objresult" else json.dumps(result))
    elif step == "moderation":
        record.update(state="fail", failCode="422",
                      failMsg="Invalid prompt: prompt contains prohibited content")
    elif step == "upstream":
        record.update(state="fail", failCode="500",
                      failMsg="Internal Error, Please try again later.")
    return record


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, port: int, api_key: str | None) -> None:
        super().__init__((host, port), Handler)
        self.state = FakeState(api_key)
        self.base_url = f"http://{host}:{self.server_address[1]}"


class FakeProvider(BackgroundServer):
    """The fake server running in a background thread (tests, the demo)."""

    def __init__(self, server: FakeServer) -> None:
        super().__init__(server, "fake-provider")
        self.server = server

    def stats(self) -> dict[str, Any]:
        return self.server.state.stats()

    def reset(self) -> None:
        self.server.state.reset()


def start_in_thread(host: str = "127.0.0.1", port: int = 0,
                    api_key: str | None = None) -> FakeProvider:
    return FakeProvider(FakeServer(host, port, api_key))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="videopoll fake-provider")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--webhook-key", default=None, help="sign callbacks (KIE webhookHmacKey)")
    args = parser.parse_args(argv)
    server = FakeServer(args.host, args.port, args.api_key)
    server.state.webhook_key = args.webhook_key
    return serve_until_stopped(server, f"fake KIE.ai provider on {server.base_url}")


__all__ = ["FakeProvider", "Scenario", "main", "start_in_thread"]
