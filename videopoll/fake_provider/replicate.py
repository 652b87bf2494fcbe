"""Replicate's predictions API played under ``/replicate/v1`` (providers.md §6).

Official-model creates, status, cancel, the default webhook secret, and ``completed``
webhooks (the prediction object, Standard-Webhooks signed) to the ``webhook`` a create names.
"""

from __future__ import annotations

import base64
import json
import re
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

WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"fake-replicate-webhook-secret-32").decode()
FORGED_SECRET = "whsec_" + base64.b64encode(b"not-the-replicate-webhook-secret").decode()
MODELS = ("google/veo-3", "minimax/hailuo-02", "kwaivgi/kling-v2.1")
DONE = ("success", "stitched", "objresult")
_CREATE = re.compile(r"^/v1/models/([^/]+)/([^/]+)/predictions$")
_PREDICTION = re.compile(r"^/v1/predictions/([^/]+)(/cancel)?$")
FAILURES = {
    "moderation": "The input or output was flagged as sensitive. Please try again with "
                  "different inputs. (E005)",
    "upstream": "Prediction failed: the model crashed while generating (E1000)",
}
THROTTLED = "Request was throttled. Your rate limit resets in ~1s."


def _problem(status: int, title: str, detail: str) -> FakeReply:
    return reply({"title": title, "detail": detail, "status": status}, status=status)


class ReplicateFake(FakeFamily):
    prefix = "replicate"
    config_name = "replicate"
    families = ("replicate",)

    def __init__(self, state: FakeState) -> None:
        super().__init__(state)
        self.server_url = "http://127.0.0.1"  # learnt from the first request

    def config(self, server_url: str) -> dict[str, Any]:
        return {"base_url": f"{server_url}/replicate/v1", "api_key": self.api_key,
                "webhook_secret": WEBHOOK_SECRET}

    def handle(self, req: FakeRequest) -> FakeReply | None:
        if not req.path.startswith("/v1/"):
            return None
        self.server_url = req.server_url
        if not self.authorized(req):
            return _problem(401, "Unauthenticated", "You did not pass a valid authentication "
                                                    "token")
        if (req.method, req.path) == ("GET", "/v1/webhooks/default/secret"):
            return reply({"key": WEBHOOK_SECRET})
        if req.method == "POST" and (match := _CREATE.match(req.path)):
            return self._create(f"{unquote(match[1])}/{unquote(match[2])}", req.json_body())
        match = _PREDICTION.match(req.path)
        if match is None:
            return _problem(404, "Not found", "Not found.")
        task_id = unquote(match[1])
        if match[2] and req.method == "POST":
            with self.state.lock:
                self.state.canceled.add(task_id)
            return reply(self._prediction(task_id, "canceled"))
        if req.method != "GET" or match[2]:
            return _problem(405, "Method not allowed", "Method not allowed.")
        return self._status(task_id)

    def _create(self, model: str, body: dict[str, Any]) -> FakeReply:
        if model not in MODELS:
            return _problem(404, "Not found", f"Model {model} not found.")
        data = body.get("input")
        data = data if isinstance(data, dict) else {}
        prompt = data.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            return _problem(422, "Input validation failed", "input: prompt is required")
        if model == "kwaivgi/kling-v2.1" and not data.get("start_image"):
            return _problem(422, "Input validation failed", "input: start_image is required")
        scenario = parse_scenario(prompt)
        if scenario.name == "maintenance":  # throttled before any prediction exists
            return _problem(429, "Request was throttled", THROTTLED)
        task_id = self.state.new_task("replicate", prompt, {**body, "model": model})
        if scenario.name == "lostreply":
            return text_reply(500, "Internal Server Error", "text/plain")
        webhook = body.get("webhook")
        if isinstance(webhook, str) and webhook.startswith("http"):
            self.state.call_back_later(task_id, webhook,
                                       lambda step: self.callback(task_id, step))
        answer = reply(self._prediction(task_id, "starting"), status=201)
        if scenario.name == "slowreply":
            answer.delay = float(scenario.n)
        return answer

    def _status(self, task_id: str) -> FakeReply:
        _, step, k = self.state.poll(task_id)
        if step == "http500":
            return text_reply(500, "Internal Server Error", "text/plain")
        if step == "html502":
            return text_reply(502, "<html><body><h1>502 Bad Gateway</h1></body></html>")
        if step == "garbage":
            return text_reply(200, "not json{{", "text/plain")
        if step == "ratelimited":  # no Retry-After: the body says when
            return _problem(429, "Request was throttled", THROTTLED)
        if step == "auth":
            return _problem(401, "Unauthenticated", "You did not pass a valid authentication "
                                                    "token")
        if step == "notfound":
            return _problem(404, "Not found", "Not found.")
        if step == "generating":
            return reply(self._prediction(task_id, "starting" if k == 1 else "processing"))
        return reply(self._prediction(task_id, step))

    def _prediction(self, task_id: str, step: str) -> dict[str, Any]:
        """The prediction object (providers.md §6) for a step of the script."""
        submitted = self.state.submitted.get(task_id)
        body = submitted if isinstance(submitted, dict) else {}
        url = f"{self.server_url}/files/{task_id}.mp4"
        status, output, error, removed = step, None, None, False
        if step in DONE:
            status, output = "succeeded", url
        elif step == "nourl":
            status = "succeeded"
        elif step == "expired":  # an hour after it ended: inputs and outputs deleted
            status, removed = "succeeded", True
        elif step in FAILURES:
            status, error = "failed", FAILURES[step]
        base = f"{self.server_url}/replicate/v1/predictions/{task_id}"
        return {
            "id": task_id, "model": body.get("model", MODELS[0]), "version": "hidden",
            "input": body.get("input", {}), "logs": "", "output": output, "error": error,
            "status": status, "created_at": "2026-11-22T10:25:00.000000Z",
            "data_removed": removed, "started_at": None, "completed_at": None,
            "urls": {"get": base, "cancel": f"{base}/cancel"},
        }

    def callback(self, task_id: str, step: str, forged: bool = False) -> Outbound | None:
        """The ``completed`` webhook: the prediction object itself, Standard-signed."""
        raw = json.dumps(self._prediction(task_id, step)).encode()
        return Outbound(signed_headers(FORGED_SECRET if forged else WEBHOOK_SECRET, raw), raw)
