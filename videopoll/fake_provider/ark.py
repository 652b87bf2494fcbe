"""BytePlus ModelArk (Seedance) played under ``/ark/api/v3`` (providers.md §9.2).

Content generation tasks: ``{"id": "cgt-…"}`` from the create, the task object from the
status route (``queued`` on the first poll, ``running`` after), ``DELETE`` cancels a task
that is still queued. Errors are ``{"error": {"code", "message", "param", "type"}}``.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import unquote

from videopoll.fake_provider.core import FakeReply, FakeRequest, reply
from videopoll.fake_provider.rest import SUCCESS_STEPS, RestFake

ROOT = "/api/v3"
TASKS = "/contents/generations/tasks"
MODERATION = ("OutputVideoSensitiveContentDetected.PolicyViolation",
              "The request failed because the output video may be related to copyright "
              "restrictions.")


def _error(code: str, message: str, status: int) -> FakeReply:
    headers = {"Retry-After": "1"} if status == 429 else None
    return reply({"error": {"code": code, "message": message, "param": "", "type": ""}},
                 status, headers=headers)


class ArkFake(RestFake):
    prefix = "ark"
    config_name = "ark"
    families = ("ark",)
    kind = "cgt"

    def config(self, server_url: str) -> dict[str, Any]:
        return {"base_url": f"{self.base_url(server_url)}{ROOT}", "api_key": self.api_key}

    def handle(self, req: FakeRequest) -> FakeReply | None:
        if not req.path.startswith(f"{ROOT}/"):
            return None
        if not self.authorized(req):
            return _error("AuthenticationError",
                          "The API key in the request is missing or invalid.", 401)
        path = req.path[len(ROOT):]
        if req.method == "POST" and path == TASKS:
            return self._create(req)
        if path.startswith(f"{TASKS}/"):
            task_id = unquote(path[len(TASKS) + 1:])
            if req.method == "GET":
                return self.status(req, task_id)
            if req.method == "DELETE":
                return self._cancel(task_id)
        return _error("NotFound", "The requested resource was not found.", 404)

    def _create(self, req: FakeRequest) -> FakeReply:
        body = req.json_body()
        content = body.get("content")
        texts = [item.get("text") for item in content if isinstance(item, dict)
                 and item.get("type") == "text"] if isinstance(content, list) else []
        prompt = texts[0] if texts and isinstance(texts[0], str) else ""
        if not body.get("model") or not prompt.strip():
            return _error("InvalidParameter", "model and a text content item are required", 400)
        if "nsfw-input" in prompt:  # input-side moderation is refused at create (§9.2)
            return _error("InputTextSensitiveContentDetected",
                          "The request failed because the input text may contain sensitive "
                          "information.", 400)
        return self.submit(req, prompt, body, body.get("callback_url"))

    def _cancel(self, task_id: str) -> FakeReply:
        """Only a queued task can be cancelled: one polled past queued is running."""
        with self.state.lock:
            if self.state.polls.get(task_id, 0) >= 2:
                running = True
            else:
                running = False
                self.state.canceled.add(task_id)
        if running:
            return _error("InvalidParameter", "Only queued tasks can be cancelled.", 400)
        return reply({})

    def refused(self) -> FakeReply:
        return _error("ServerOverloaded", "The service is overloaded, please retry later.", 429)

    def lost(self) -> FakeReply:
        return _error("InternalServiceError", "The service encountered an unexpected internal "
                                              "error.", 500)

    def created(self, task_id: str, body: dict[str, Any]) -> FakeReply:
        return reply({"id": task_id})

    def answer(self, req: FakeRequest, task_id: str, step: str, k: int) -> FakeReply:
        if step == "ratelimited":
            return _error("RateLimitExceeded.EndpointRPMExceeded",
                          "Request rate exceeded the endpoint RPM limit.", 429)
        if step == "auth":
            return _error("AuthenticationError", "The API key in the request is invalid.", 401)
        if step == "notfound":
            return _error("ResourceNotFound", f"The specified task {task_id} is not found.", 404)
        return reply(self.task(task_id, step, k, self.file_url(req, task_id)))

    def task(self, task_id: str, step: str, k: int, url: str) -> dict[str, Any]:
        now = int(time.time())
        task: dict[str, Any] = {
            "id": task_id, "model": "seedance-1-0-pro-250528",
            "status": "queued" if k <= 1 else "running", "created_at": now - 30,
            "updated_at": now, "resolution": "720p", "ratio": "16:9", "duration": 5,
            "framespersecond": 24, "execution_expires_after": 172800,
        }
        if step in SUCCESS_STEPS or step == "nourl":
            task.update(status="succeeded", seed=78674,
                        content={"video_url": url} if step != "nourl" else {},
                        usage={"completion_tokens": 108900, "total_tokens": 108900})
        elif step == "moderation":
            task.update(status="failed", error={"code": MODERATION[0], "message": MODERATION[1]})
        elif step == "upstream":
            task.update(status="failed", error={"code": "InternalServiceError", "message":
                                                "The service encountered an unexpected "
                                                "internal error."})
        elif step == "expired":
            task.update(status="expired")
        elif step == "canceled":
            task.update(status="cancelled")
        return task
