"""Runway's developer API played under ``/runway/v1`` (providers.md §8).

``POST /text_to_video`` and ``/image_to_video`` answer ``{"id"}``; ``GET /tasks/{id}`` plays
the task object (PENDING on the first poll, RUNNING with ``progress`` 0-1 after) and
``DELETE /tasks/{id}`` cancels (204). Every call needs ``X-Runway-Version: 2024-11-06``.
Errors are ``{"error": …}``; their wordings and the failure texts are [COMPOSED].
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from videopoll.fake_provider.core import FakeReply, FakeRequest, Outbound, reply
from videopoll.fake_provider.rest import SUCCESS_STEPS, RestFake
from videopoll.providers.runway import API_VERSION, RATIOS

MODELS = {"/text_to_video": ("gen4.5",), "/image_to_video": ("gen4_turbo", "gen4.5")}
FAILURES = {
    "moderation": ("SAFETY.INPUT.TEXT", "The prompt did not pass our content moderation."),
    "upstream": ("INTERNAL.BAD_OUTPUT.CODE01", "The output did not pass quality checks."),
}


def _error(status: int, message: str) -> FakeReply:
    return reply({"error": message}, status)


class RunwayFake(RestFake):
    prefix = "runway"
    config_name = "runway"
    families = ("runway",)
    kind = "runway"

    def config(self, server_url: str) -> dict[str, Any]:
        return {"base_url": f"{self.base_url(server_url)}/v1", "api_key": self.api_key}

    def handle(self, req: FakeRequest) -> FakeReply | None:
        if not req.path.startswith("/v1/"):
            return None
        if not self.authorized(req):
            return _error(401, "Invalid API key.")
        if req.header("x-runway-version") != API_VERSION:
            return _error(400, f"The X-Runway-Version header must be {API_VERSION}.")
        path = req.path[len("/v1"):]
        if req.method == "POST" and path in MODELS:
            return self._create(req, path, req.json_body())
        if path.startswith("/tasks/") and "/" not in path[len("/tasks/"):]:
            task_id = unquote(path[len("/tasks/"):])
            if req.method == "GET":
                return self.status(req, task_id)
            if req.method == "DELETE":
                with self.state.lock:
                    self.state.canceled.add(task_id)
                return FakeReply(204, b"")
            return _error(405, "Method not allowed.")
        return _error(404, "Not found.")

    def _create(self, req: FakeRequest, path: str, body: dict[str, Any]) -> FakeReply:
        prompt = body.get("promptText")
        problems = []
        if body.get("model") not in MODELS[path]:
            problems.append(f"model must be one of {', '.join(MODELS[path])}")
        if not isinstance(prompt, str) or not prompt.strip() or len(prompt) > 1000:
            problems.append("promptText must be 1-1000 characters")
        if body.get("ratio") not in RATIOS.values():
            problems.append("ratio is not a supported size")
        duration = body.get("duration")
        if not isinstance(duration, int) or isinstance(duration, bool) or not 2 <= duration <= 10:
            problems.append("duration must be an integer of seconds")
        if path == "/image_to_video" and not str(body.get("promptImage") or "").startswith(
                ("http", "data:")):
            problems.append("promptImage is required")
        if problems:
            return _error(400, "; ".join(problems))
        return self.submit(req, str(prompt), body, None)

    def refused(self) -> FakeReply:
        return _error(429, "You have exceeded the rate limit.")

    def lost(self) -> FakeReply:
        return _error(500, "Internal server error.")

    def created(self, task_id: str, body: dict[str, Any]) -> FakeReply:
        return reply({"id": task_id})

    def answer(self, req: FakeRequest, task_id: str, step: str, k: int) -> FakeReply:
        if step == "ratelimited":
            return _error(429, "You have exceeded the rate limit.")
        if step == "auth":
            return _error(401, "Invalid API key.")
        if step in ("notfound", "expired"):
            return _error(404, "Task not found.")
        return reply(self.task(task_id, step, k, self.file_url(req, task_id)))

    def task(self, task_id: str, step: str, k: int, url: str) -> dict[str, Any]:
        task: dict[str, Any] = {"id": task_id, "createdAt": "2026-11-22T10:25:00.000Z",
                                "status": "PENDING"}
        if step == "generating" and k > 1:
            task.update(status="RUNNING", progress=min(0.95, 0.3 * (k - 1)))
        elif step in SUCCESS_STEPS or step == "nourl":
            task.update(status="SUCCEEDED", output=[url] if step != "nourl" else [])
        elif step in FAILURES:
            code, failure = FAILURES[step]
            task.update(status="FAILED", failureCode=code, failure=failure)
        elif step == "canceled":
            task.update(status="CANCELLED")
        return task

    def callback(self, task_id: str, step: str, forged: bool = False) -> Outbound | None:
        return None  # Runway documents no webhooks: it is only polled
