"""Luma Dream Machine played under ``/luma/dream-machine/v1`` (providers.md §9.1).

One generation object per task: the create answers it (``queued``), the status route
returns it (``queued`` on the first poll, ``dreaming`` after), and the callback carries it.
Errors are ``{"detail": …}``; wordings of failures are [COMPOSED] (Luma documents none).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from videopoll.fake_provider.core import FakeReply, FakeRequest, reply
from videopoll.fake_provider.rest import SUCCESS_STEPS, RestFake

ROOT = "/dream-machine/v1"
MODERATION_REASON = "400: prompt not allowed because advanced moderation failed"


class LumaFake(RestFake):
    prefix = "luma"
    config_name = "luma"
    families = ("luma",)
    kind = "luma"

    def config(self, server_url: str) -> dict[str, Any]:
        return {"base_url": f"{self.base_url(server_url)}{ROOT}", "api_key": self.api_key}

    def handle(self, req: FakeRequest) -> FakeReply | None:
        if not req.path.startswith(f"{ROOT}/"):
            return None
        if not self.authorized(req):
            return reply({"detail": "Invalid API key"}, 401)
        path = req.path[len(ROOT):]
        if req.method == "POST" and path in ("/generations", "/generations/video"):
            body = req.json_body()
            prompt = body.get("prompt")
            if not isinstance(prompt, str) or not prompt.strip() or not body.get("model"):
                return reply({"detail": [{"loc": ["body", "prompt"], "msg": "field required",
                                          "type": "value_error.missing"}]}, 422)
            return self.submit(req, prompt, body, body.get("callback_url"))
        if req.method == "GET" and path.startswith("/generations/"):
            return self.status(req, unquote(path[len("/generations/"):]))
        return reply({"detail": "Not Found"}, 404)

    def refused(self) -> FakeReply:
        return reply({"detail": "Too many requests, please slow down"}, 429,
                     headers={"Retry-After": "1"})

    def lost(self) -> FakeReply:
        return reply({"detail": "Internal Server Error"}, 500)

    def created(self, task_id: str, body: dict[str, Any]) -> FakeReply:
        return reply(self.task(task_id, "generating", 1, ""), 201)

    def answer(self, req: FakeRequest, task_id: str, step: str, k: int) -> FakeReply:
        if step == "ratelimited":
            return reply({"detail": "Too many requests"}, 429, headers={"Retry-After": "1"})
        if step == "auth":
            return reply({"detail": "Invalid API key"}, 401)
        if step in ("notfound", "expired"):
            return reply({"detail": "Generation not found"}, 404)
        return reply(self.task(task_id, step, k, self.file_url(req, task_id)))

    def task(self, task_id: str, step: str, k: int, url: str) -> dict[str, Any]:
        generation: dict[str, Any] = {
            "id": task_id, "generation_type": "video",
            "state": "queued" if k <= 1 else "dreaming", "failure_reason": None,
            "created_at": "2026-11-22T10:25:00Z", "assets": None, "model": "ray-2",
            "request": {"prompt": "…", "model": "ray-2", "duration": "5s"},
        }
        if step in SUCCESS_STEPS:
            generation.update(state="completed", assets={
                "video": url, "image": url.replace(".mp4", ".jpg")})
        elif step == "nourl":
            generation.update(state="completed", assets={})
        elif step == "moderation":
            generation.update(state="failed", failure_reason=MODERATION_REASON)
        elif step in ("upstream", "canceled"):
            generation.update(state="failed", failure_reason="Internal server error")
        return generation
