"""OpenAI's Videos API played under ``/openai/v1``: create, status, content, delete, webhooks.

As the real API (providers.md §4), a submit takes no webhook URL: webhooks are a project
setting. The demo and tests set ``webhook_url`` on this fake instead (or POST ``{"url": …}`` to
``/openai/_fake/webhook`` when the fake runs in another process), and every later submit is
then followed by a signed ``video.completed``/``video.failed`` event there. The MP4 is
served at ``/videos/{id}/content`` itself and wants the API key, as OpenAI's does.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from videopoll.fake_provider.core import (
    FakeFamily,
    FakeReply,
    FakeRequest,
    FakeState,
    Outbound,
    reply,
    text_reply,
)
from videopoll.fake_provider.scenarios import parse_scenario
from videopoll.providers.standard_webhooks import signed_headers

SAMPLE_MP4 = Path(__file__).with_name("sample.mp4")
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"fake-openai-webhook-secret-32by").decode()
FORGED_SECRET = "whsec_" + base64.b64encode(b"not-the-openai-webhook-secret!!").decode()
SECONDS = ("4", "8", "12")
SIZES = ("720x1280", "1280x720", "1024x1792", "1792x1024")
DONE = ("success", "stitched", "objresult")
_VIDEO = re.compile(r"^/v1/videos/([^/]+)(/content)?$")
# [COMPOSED]: OpenAI's failure codes are not documented (providers.md §4.2)
FAILURES = {
    "moderation": {"code": "moderation_blocked",
                   "message": "Your request was blocked by our moderation system."},
    "upstream": {"code": "internal_error",
                 "message": "Video generation failed due to an internal error."},
}


def _error(status: int, message: str, kind: str, code: str | None = None) -> FakeReply:
    return reply({"error": {"message": message, "type": kind, "param": None, "code": code}},
                 status=status)


class OpenAIFake(FakeFamily):
    prefix = "openai"
    config_name = "openai"
    families = ("openai",)

    def __init__(self, state: FakeState) -> None:
        super().__init__(state)
        self.webhook_url: str | None = None  # the project's webhook endpoint, when set

    def config(self, server_url: str) -> dict[str, Any]:
        return {"base_url": f"{server_url}/openai/v1", "api_key": self.api_key,
                "webhook_secret": WEBHOOK_SECRET}

    def handle(self, req: FakeRequest) -> FakeReply | None:
        if (req.method, req.path) == ("POST", "/_fake/webhook"):
            # the dashboard setting, for a fake in another process: {"url": "…" or null}
            url = req.json_body().get("url")
            self.webhook_url = url if isinstance(url, str) and url.startswith("http") else None
            return reply({"webhook_url": self.webhook_url})
        if not req.path.startswith("/v1/"):
            return None
        if not self.authorized(req):
            return _error(401, "Incorrect API key provided.", "invalid_request_error",
                          "invalid_api_key")
        if (req.method, req.path) == ("POST", "/v1/videos"):
            return self._create(req.json_body())
        match = _VIDEO.match(req.path)
        if match is None:
            return _error(404, f"Unknown request URL: {req.method} {req.path}.",
                          "invalid_request_error")
        task_id, content = unquote(match.group(1)), bool(match.group(2))
        if req.method == "DELETE" and not content:
            with self.state.lock:  # deleted: later requests do not find it
                self.state.canceled.add(task_id)
            return reply({"id": task_id, "object": "video.deleted", "deleted": True})
        if req.method != "GET":
            return _error(405, "Method not allowed.", "invalid_request_error")
        return self._content(task_id) if content else self._status(task_id)

    def _create(self, body: dict[str, Any]) -> FakeReply:
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            return _error(400, "Missing required parameter: 'prompt'.",
                          "invalid_request_error", "missing_required_parameter")
        for field, allowed in (("seconds", SECONDS), ("size", SIZES)):
            if field in body and body[field] not in allowed:  # "8" is valid, 8 is not
                return _error(400, f"Invalid value for '{field}': {body[field]!r}.",
                              "invalid_request_error", "invalid_value")
        if body.get("model", "sora-2") not in ("sora-2", "sora-2-pro"):
            return _error(400, "Invalid model.", "invalid_request_error", "invalid_value")
        scenario = parse_scenario(prompt)
        if scenario.name == "maintenance":  # refused before any video exists
            return _error(429, "Rate limit reached for sora-2 on requests per min (RPM).",
                          "requests", "rate_limit_exceeded")
        task_id = self.state.new_task("video", prompt, body)
        if scenario.name == "lostreply":
            return _error(500, "The server had an error while processing your request.",
                          "server_error")
        if self.webhook_url:
            self.state.call_back_later(task_id, self.webhook_url,
                                       lambda step: self.callback(task_id, step))
        answer = reply(_video(task_id, "queued", 0, body))
        if scenario.name == "slowreply":
            answer.delay = float(scenario.n)
        return answer

    def _status(self, task_id: str) -> FakeReply:
        _, step, k = self.state.poll(task_id)
        if step == "http500":
            return _error(500, "The server had an error while processing your request.",
                          "server_error")
        if step == "html502":
            return text_reply(502, "<html><body><h1>502 Bad Gateway</h1></body></html>")
        if step == "garbage":
            return text_reply(200, "not json{{", "text/plain")
        if step == "ratelimited":
            return _error(429, "Rate limit reached for sora-2 on requests per min (RPM).",
                          "requests", "rate_limit_exceeded")
        if step == "auth":
            return _error(401, "Incorrect API key provided.", "invalid_request_error",
                          "invalid_api_key")
        if step in ("notfound", "expired", "canceled"):  # canceled = deleted (DELETE)
            return _error(404, f"Video with id '{task_id}' not found.",
                          "invalid_request_error")
        body = self.state.submitted.get(task_id)
        submitted = body if isinstance(body, dict) else {}
        if step in DONE:
            return reply(_video(task_id, "completed", 100, submitted,
                                completed_at=int(time.time()),
                                expires_at=int(time.time()) + 3600))
        if step in FAILURES:
            return reply(_video(task_id, "failed", 0, submitted, error=FAILURES[step]))
        if step == "nourl":  # the API has no URL-less success: still rendering
            return reply(_video(task_id, "in_progress", 99, submitted))
        if k == 1:
            return reply(_video(task_id, "queued", 0, submitted))
        return reply(_video(task_id, "in_progress", min(95, 33 * (k - 1)), submitted))

    def _content(self, task_id: str) -> FakeReply:
        with self.state.lock:
            gone = task_id in self.state.canceled
            self.state.downloads[task_id] = self.state.downloads.get(task_id, 0) + 1
        if gone or parse_scenario(task_id).name == "gone" or (
                self.state.final_step(task_id) not in DONE):
            return _error(404, f"Video with id '{task_id}' has no downloadable content.",
                          "invalid_request_error")
        return FakeReply(200, SAMPLE_MP4.read_bytes(), "video/mp4")

    def callback(self, task_id: str, step: str, forged: bool = False) -> Outbound | None:
        """The project webhook's event (providers.md §4.3): only the id, Standard-signed."""
        event = {"id": f"evt_{secrets.token_hex(12)}", "object": "event",
                 "created_at": int(time.time()),
                 "type": "video.completed" if step in DONE else "video.failed",
                 "data": {"id": task_id}}
        raw = json.dumps(event).encode()
        return Outbound(signed_headers(FORGED_SECRET if forged else WEBHOOK_SECRET, raw), raw)


def _video(task_id: str, status: str, progress: int, submitted: dict[str, Any],
           **extra: Any) -> dict[str, Any]:
    """The video object of providers.md §4.2."""
    video: dict[str, Any] = {
        "id": task_id, "object": "video", "created_at": int(time.time()) - 30,
        "status": status, "model": submitted.get("model", "sora-2"), "progress": progress,
        "prompt": submitted.get("prompt", ""), "seconds": submitted.get("seconds", "4"),
        "size": submitted.get("size", "720x1280"), "remixed_from_video_id": None,
        "completed_at": None, "expires_at": None, "error": None,
    }
    video.update(extra)
    return video
