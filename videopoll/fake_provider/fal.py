"""fal.ai's queue API played under ``/fal`` (providers.md §7).

``POST /fal/<endpoint id>`` (any subpath) queues a request and answers its ``request_id`` with
status, response and cancel URLs that point here and name only owner/app, as fal's do.
``…/requests/{id}/status`` plays IN_QUEUE (first poll), IN_PROGRESS, then COMPLETED (HTTP 202
while pending, 200 when done); ``…/requests/{id}`` is the result, where a failure shows
(moderation 422, a 504 timeout); ``PUT …/cancel`` cancels a request not yet done. Webhooks
go to ``?fal_webhook=``, signed ED25519 with a key made at start and published as a JWKS at
``/fal/.well-known/jwks.json``; a forged one is signed with another key. The task book is
keyed by our adapter's task id, ``<owner>/<app>/requests/<id>``.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from videopoll.fake_provider.core import (
    FakeFamily,
    FakeReply,
    FakeRequest,
    FakeState,
    Outbound,
    reply,
    text_reply,
)
from videopoll.fake_provider.rest import PLACEHOLDER_SERVER, SUCCESS_STEPS
from videopoll.fake_provider.scenarios import parse_scenario, step_for
from videopoll.providers.fal.webhook import encode_key, signed_message

_REQUEST = re.compile(r"^/([^/]+/[^/]+)/requests/([^/]+)(/status|/cancel)?$")
USER_ID = "fake-fal-user"
MODERATION = {"loc": ["body", "prompt"], "msg": "The content was flagged by a content checker.",
              "type": "content_policy_violation",
              "url": "https://docs.fal.ai/errors#content_policy_violation", "input": "…"}
TIMED_OUT = {"detail": "Request timed out", "error_type": "request_timeout"}  # [DOC]
CANCELED = {"detail": "Request was cancelled by the user."}  # [COMPOSED]
NOT_FOUND = {"detail": "Request not found"}  # [COMPOSED]: fal's wording is not documented


class FalFake(FakeFamily):
    prefix = "fal"
    config_name = "fal"
    families = ("fal",)

    def __init__(self, state: FakeState) -> None:
        super().__init__(state)
        self.key = Ed25519PrivateKey.generate()
        self.forger = Ed25519PrivateKey.generate()  # signs forgeries: not in the JWKS
        self.server_url = PLACEHOLDER_SERVER  # learnt from the first request

    def config(self, server_url: str) -> dict[str, Any]:
        return {"base_url": self.base_url(server_url), "api_key": self.api_key,
                "jwks_url": f"{self.base_url(server_url)}/.well-known/jwks.json"}

    def authorized(self, req: FakeRequest) -> bool:
        return req.header("authorization") == f"Key {self.api_key}"

    def jwks(self) -> dict[str, Any]:
        raw = self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return {"keys": [{"kty": "OKP", "crv": "Ed25519", "use": "sig", "kid": "fake-fal",
                          "x": encode_key(raw)}]}

    def handle(self, req: FakeRequest) -> FakeReply | None:
        self.server_url = req.server_url
        if (req.method, req.path) == ("GET", "/.well-known/jwks.json"):
            return reply(self.jwks())
        if not self.authorized(req):
            return reply({"detail": "No user found for Key ID and Secret"}, 401)
        match = _REQUEST.match(req.path)
        if match is None:
            if req.method == "POST" and req.path.count("/") >= 2:
                return self._submit(req, req.path.strip("/"))
            return reply({"detail": "Not Found"}, 404)
        task, action = f"{match[1]}/requests/{match[2]}", match[3]
        if (req.method, action) == ("GET", "/status"):
            return self._status(req, task)
        if (req.method, action) == ("GET", None):
            return self._result(task)
        if (req.method, action) == ("PUT", "/cancel"):
            return self._cancel(task)
        return reply({"detail": "Method Not Allowed"}, 405)

    def _submit(self, req: FakeRequest, endpoint: str) -> FakeReply:
        body = req.json_body()
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            return reply({"detail": [{"loc": ["body", "prompt"], "msg": "field required",
                                      "type": "missing"}]}, 422)
        scenario = parse_scenario(prompt)
        if scenario.name == "maintenance":  # the account's limit: refused, nothing queued
            return reply({"detail": "Too many requests"}, 429, headers={"Retry-After": "1"})
        request_id = self.state.new_task("fal", prompt, {**body, "endpoint": endpoint})
        task = f"{'/'.join(endpoint.split('/')[:2])}/requests/{request_id}"
        with self.state.lock:  # the book is keyed by the adapter's task id
            self.state.prompts[task] = self.state.prompts.pop(request_id)
            self.state.submitted[task] = self.state.submitted.pop(request_id)
        if scenario.name == "lostreply":
            return text_reply(500, "Internal Server Error", "text/plain")
        answer = {"request_id": request_id, **self._urls(task)}
        webhook = req.query.get("fal_webhook", "")
        if webhook.startswith("http"):
            answer["gateway_request_id"] = request_id
            self.state.call_back_later(task, webhook, lambda step: self.callback(task, step))
        out = reply(answer)
        if scenario.name == "slowreply":
            out.delay = float(scenario.n)
        return out

    def _urls(self, task: str) -> dict[str, str]:
        base = f"{self.base_url(self.server_url)}/{task}"
        return {"response_url": base, "status_url": f"{base}/status",
                "cancel_url": f"{base}/cancel"}

    def _status(self, req: FakeRequest, task: str) -> FakeReply:
        _, step, k = self.state.poll(task)
        if step == "http500":
            return reply({"detail": "Internal Server Error"}, 500)
        if step == "html502":
            return text_reply(502, "<html><body><h1>502 Bad Gateway</h1></body></html>")
        if step == "garbage":
            return text_reply(200, "not json{{", "text/plain")
        if step == "ratelimited":
            return reply({"detail": "Too many requests"}, 429, headers={"Retry-After": "1"})
        if step == "auth":
            return reply({"detail": "No user found for Key ID and Secret"}, 401)
        if step in ("notfound", "expired"):
            return reply(NOT_FOUND, 404)
        urls = {"response_url": self._urls(task)["response_url"]}
        if step == "generating" and k <= 1:
            return reply({"status": "IN_QUEUE", "queue_position": 0, **urls}, 202)
        if step == "generating":
            return reply({"status": "IN_PROGRESS", "logs": [{"message": "step 1/2"}], **urls},
                         202)
        return reply({"status": "COMPLETED", "logs": [], "metrics": {"inference_time": 1.5},
                      **urls})

    def _step(self, task: str) -> str:
        """The task's current step without counting a poll (the result is not a status)."""
        scenario = parse_scenario(task)
        with self.state.lock:
            if task in self.state.canceled:
                return "canceled"
            k = self.state.polls.get(task, 0)
            if task in self.state.finished:
                k = max(k, scenario.n + 1)
        return step_for(scenario, max(k, 1)).kind

    def _result(self, task: str) -> FakeReply:
        step = self._step(task)
        if step in SUCCESS_STEPS or step == "nourl":
            return reply(self._payload(task, step))
        if step == "moderation":
            return reply({"detail": [MODERATION]}, 422)
        if step == "upstream":
            return reply(TIMED_OUT, 504)
        if step == "canceled":
            return reply(CANCELED, 400)
        if step == "generating":
            return reply({"detail": "Request is still in progress"}, 400)
        return reply(NOT_FOUND, 404)

    def _payload(self, task: str, step: str) -> dict[str, Any]:
        request_id = task.rsplit("/", 1)[-1]
        url = f"{self.server_url}/files/{request_id}.mp4" if step != "nourl" else ""
        return {"video": {"url": url, "content_type": "video/mp4",
                          "file_name": f"{request_id}.mp4", "file_size": 1024}}

    def _cancel(self, task: str) -> FakeReply:
        if self._step(task) != "generating":
            return reply({"status": "ALREADY_COMPLETED"}, 400)
        with self.state.lock:
            self.state.canceled.add(task)
        return reply({"status": "CANCELLATION_REQUESTED"}, 202)

    def callback(self, task_id: str, step: str, forged: bool = False) -> Outbound | None:
        """The webhook (providers.md §7): OK with the payload, or ERROR with the error."""
        request_id = task_id.rsplit("/", 1)[-1]
        ok = step in SUCCESS_STEPS or step == "nourl"
        error = None if ok else ("Invalid status code: 422" if step == "moderation"
                                 else "Invalid status code: 504")
        payload = (self._payload(task_id, step) if ok else
                   {"detail": [MODERATION]} if step == "moderation" else TIMED_OUT)
        raw = json.dumps({"request_id": request_id, "gateway_request_id": request_id,
                          "status": "OK" if ok else "ERROR", "payload": payload,
                          "error": error, "payload_error": None}).encode()
        stamp = str(int(time.time()))
        signer = self.forger if forged else self.key
        signature = signer.sign(signed_message(request_id, USER_ID, stamp, raw)).hex()
        return Outbound({"X-Fal-Webhook-Request-Id": request_id,
                         "X-Fal-Webhook-User-Id": USER_ID, "X-Fal-Webhook-Timestamp": stamp,
                         "X-Fal-Webhook-Signature": signature}, raw,
                        {"app": task_id.split("/requests/", 1)[0]})
