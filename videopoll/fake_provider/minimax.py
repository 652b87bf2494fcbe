"""MiniMax Hailuo played under ``/minimax`` (providers.md §9.3).

Every answer is HTTP 200 with ``base_resp``: a non-zero ``status_code`` is the error (1002
rate limit, 1004 auth, 1027 output moderation with status ``Fail``). A ``Success`` names a
``file_id`` whose ``download_url`` comes from ``/v1/files/retrieve``. A callback URL is first
verified with ``{"challenge": …}``, then sent the status update. The unknown-task answer
(2013 invalid params) is [COMPOSED]: MiniMax documents none.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from videopoll.fake_provider.core import FakeReply, FakeRequest, Outbound, post, reply
from videopoll.fake_provider.rest import SUCCESS_STEPS, RestFake

OK = {"status_code": 0, "status_msg": "success"}
FILE_PREFIX = "file-"


def _base(code: int, message: str, **fields: Any) -> FakeReply:
    return reply({**fields, "base_resp": {"status_code": code, "status_msg": message}})


class MiniMaxFake(RestFake):
    prefix = "minimax"
    config_name = "minimax"
    families = ("minimax",)
    kind = "mmx"

    def handle(self, req: FakeRequest) -> FakeReply | None:
        if not req.path.startswith("/v1/"):
            return None
        if not self.authorized(req):
            return _base(1004, "login fail: Please carry the API secret key in the "
                               "'Authorization' field of the request header")
        route = (req.method, req.path)
        if route == ("POST", "/v1/video_generation"):
            body = req.json_body()
            prompt = body.get("prompt")
            if not body.get("model") or not isinstance(prompt, str) or not prompt.strip():
                return _base(2013, "invalid params, model and prompt are required")
            return self.submit(req, prompt, body, body.get("callback_url"))
        if route == ("GET", "/v1/query/video_generation"):
            return self.status(req, req.query.get("task_id", ""))
        if route == ("GET", "/v1/files/retrieve"):
            return self._retrieve(req, req.query.get("file_id", ""))
        return reply({"base_resp": {"status_code": 404, "status_msg": "not found"}}, 404)

    def _retrieve(self, req: FakeRequest, file_id: str) -> FakeReply:
        if not file_id.startswith(FILE_PREFIX):
            return _base(2013, "invalid params, file not found")
        task_id = file_id[len(FILE_PREFIX):]
        return _base(0, "success", file={
            "file_id": file_id, "bytes": 0, "created_at": 1769863897, "filename": "output.mp4",
            "purpose": "video_generation", "download_url": self.file_url(req, task_id)})

    def schedule(self, task_id: str, url: str, server_url: str) -> None:
        def verify_then_push(step: str) -> Outbound:
            challenge = json.dumps({"challenge": secrets.token_hex(8)}).encode()
            post(url, Outbound({}, challenge))  # the receiver must echo it
            return self.pushed(task_id, step, server_url)

        self.state.call_back_later(task_id, url, verify_then_push)

    def refused(self) -> FakeReply:
        return _base(1002, "rate limit exceeded(RPM)")

    def lost(self) -> FakeReply:
        # a gateway's 500: no base_resp, so nothing proves the task was not created
        return reply({"error": "internal server error"}, 500)

    def created(self, task_id: str, body: dict[str, Any]) -> FakeReply:
        return _base(0, "success", task_id=task_id)

    def answer(self, req: FakeRequest, task_id: str, step: str, k: int) -> FakeReply:
        if step == "ratelimited":
            return _base(1002, "rate limit exceeded(RPM)")
        if step == "auth":
            return _base(1004, "login fail: invalid api key")
        if step in ("notfound", "expired"):
            return _base(2013, "invalid params, task_id not found", task_id="", status="")
        return reply(self.task(task_id, step, k, ""))

    def task(self, task_id: str, step: str, k: int, url: str) -> dict[str, Any]:
        task: dict[str, Any] = {"task_id": task_id, "file_id": "", "base_resp": OK,
                                "status": "Queueing" if k <= 1 else "Processing"}
        if step in SUCCESS_STEPS:
            task.update(status="Success", file_id=f"{FILE_PREFIX}{task_id}", video_width=1280,
                        video_height=720)
        elif step == "nourl":
            task.update(status="Success")
        elif step == "moderation":
            task.update(status="Fail", base_resp={
                "status_code": 1027, "status_msg": "output video sensitive content"})
        elif step in ("upstream", "canceled"):
            task.update(status="Fail")
        return task
