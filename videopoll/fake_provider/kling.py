"""Kling played under ``/kling`` (providers.md §9.4), with its JWT auth checked for real.

Every request must carry ``Bearer <JWT>`` signed HS256 with the fake's secret key, ``iss`` =
its access key, inside its ``nbf``/``exp`` window. Answers are the ``{"code", "message",
"request_id", "data"}`` envelope; a task is read at the endpoint it was created at
(text2video or image2video) and is unknown (404, code 1203) at the other. Callbacks carry the
bare task object. Failure wordings are [COMPOSED].
"""

from __future__ import annotations

import secrets
import time
from typing import Any
from urllib.parse import unquote

from videopoll.fake_provider.core import FakeReply, FakeRequest, reply
from videopoll.fake_provider.rest import SUCCESS_STEPS, RestFake
from videopoll.providers.kling import hs256_claims

ACCESS_KEY = "fake-kling-ak"
SECRET_KEY = "fake-kling-sk"
ENDPOINTS = {"text2video": "t2v", "image2video": "i2v"}
SKEW = 10  # seconds of clock difference the token window tolerates


def _kling(code: int, message: str, data: Any = None, status: int = 200) -> FakeReply:
    headers = {"Retry-After": "1"} if status == 429 else None
    return reply({"code": code, "message": message, "request_id": secrets.token_hex(8),
                  "data": data}, status, headers=headers)


class KlingFake(RestFake):
    prefix = "kling"
    config_name = "kling"
    families = ("kling",)
    kind = "t2v"

    def config(self, server_url: str) -> dict[str, Any]:
        return {"base_url": self.base_url(server_url), "access_key": ACCESS_KEY,
                "secret_key": SECRET_KEY}

    def authorized(self, req: FakeRequest) -> bool:
        scheme, _, token = req.header("authorization").partition(" ")
        claims = hs256_claims(token, SECRET_KEY) if scheme == "Bearer" else None
        if claims is None or claims.get("iss") != ACCESS_KEY:
            return False
        now, nbf, exp = time.time(), claims.get("nbf"), claims.get("exp")
        return (isinstance(nbf, int) and isinstance(exp, int)
                and nbf - SKEW <= now < exp + SKEW)

    def handle(self, req: FakeRequest) -> FakeReply | None:
        if not req.path.startswith("/v1/videos/"):
            return None
        if not self.authorized(req):
            return _kling(1000, "Authentication failed", status=401)
        endpoint, _, task_id = req.path[len("/v1/videos/"):].partition("/")
        kind = ENDPOINTS.get(endpoint)
        if kind is None:
            return _kling(1202, "Invalid request method", status=404)
        if req.method == "POST" and not task_id:
            return self._create(req, kind)
        if req.method == "GET" and task_id:
            task_id = unquote(task_id)
            if not task_id.startswith(f"{kind}_"):  # created at the other endpoint
                return _kling(1203, "task not found", status=404)
            return self.status(req, task_id)
        return _kling(1202, "Invalid request method", status=404)

    def _create(self, req: FakeRequest, kind: str) -> FakeReply:
        body = req.json_body()
        prompt = body.get("prompt")
        if (not body.get("model_name") or body.get("duration", "5") not in ("5", "10")
                or (kind == "i2v" and not body.get("image"))
                or (kind == "t2v" and not (isinstance(prompt, str) and prompt.strip()))):
            return _kling(1201, "Invalid parameter value", status=400)
        return self.submit(req, str(prompt or ""), body, body.get("callback_url"), kind)

    def refused(self) -> FakeReply:
        return _kling(1303, "parallel task over resource pack limit", status=429)

    def lost(self) -> FakeReply:
        return _kling(5000, "Internal server error", status=500)

    def created(self, task_id: str, body: dict[str, Any]) -> FakeReply:
        task = self.task(task_id, "generating", 1, "")
        return _kling(0, "SUCCEED", {key: task[key] for key in (
            "task_id", "task_status", "task_info", "created_at", "updated_at")})

    def answer(self, req: FakeRequest, task_id: str, step: str, k: int) -> FakeReply:
        if step == "ratelimited":
            return _kling(1302, "Too many requests", status=429)
        if step == "auth":
            return _kling(1004, "Token expired", status=401)
        if step in ("notfound", "expired"):
            return _kling(1203, "task not found", status=404)
        return _kling(0, "SUCCEED", self.task(task_id, step, k, self.file_url(req, task_id)))

    def task(self, task_id: str, step: str, k: int, url: str) -> dict[str, Any]:
        now = int(time.time() * 1000)
        submitted = self.state.submitted.get(task_id)
        external = submitted.get("external_task_id") if isinstance(submitted, dict) else None
        task: dict[str, Any] = {
            "task_id": task_id, "task_status": "submitted" if k <= 1 else "processing",
            "task_status_msg": "", "task_info": {"external_task_id": external or ""},
            "created_at": now - 30000, "updated_at": now, "task_result": {},
        }
        if step in SUCCESS_STEPS or step == "nourl":
            videos = [{"id": "v1", "url": url, "duration": "5"}] if step != "nourl" else []
            task.update(task_status="succeed", task_result={"videos": videos},
                        final_unit_deduction="1")
        elif step == "moderation":
            task.update(task_status="failed",
                        task_status_msg="Failure to pass the risk control system")
        elif step in ("upstream", "canceled"):
            task.update(task_status="failed", task_status_msg="Video generation failed")
        return task
