"""KIE.ai played: Veo (``/api/v1/veo/*``), Market (``/api/v1/jobs/*``) and Runway
(``/api/v1/runway/*``), in the shapes of providers.md §1 to §3, at the server's root."""

from __future__ import annotations

import json
import time
from typing import Any

from videopoll.fake_provider.core import (
    FakeFamily,
    FakeReply,
    FakeRequest,
    Outbound,
    reply,
    text_reply,
)
from videopoll.fake_provider.scenarios import parse_scenario
from videopoll.providers.kie.common import sign_callback

MODERATION_MSG = "Your prompt was flagged by Website as violating content policies."
RUNWAY_MODERATION = "Your prompt was caught by our AI moderator."


def _kie(code: int, msg: str, data: Any = None) -> dict[str, Any]:
    return {"code": code, "msg": msg, "data": data}


class KieFake(FakeFamily):
    prefix = ""
    config_name = "kie"
    families = ("kie_veo", "kie_market", "kie_runway")

    def config(self, server_url: str) -> dict[str, Any]:
        return {"base_url": server_url, "api_key": self.state.api_key or self.api_key,
                "webhook_hmac_key": self.state.webhook_key}

    def authorized(self, req: FakeRequest) -> bool:
        key = self.state.api_key
        return key is None or req.header("authorization") == f"Bearer {key}"

    def handle(self, req: FakeRequest) -> FakeReply | None:
        if not req.path.startswith("/api/"):
            return None
        if not self.authorized(req):
            return reply(_kie(401, "You do not have access permissions"))
        task_id = req.query.get("taskId", "")
        body = req.json_body()
        route = (req.method, req.path)
        if route == ("GET", "/api/v1/veo/record-info"):
            return self._poll(req, task_id, "veo")
        if route == ("GET", "/api/v1/jobs/recordInfo"):
            return self._poll(req, task_id, "market")
        if route == ("GET", "/api/v1/runway/record-detail"):
            return self._poll(req, task_id, "runway")
        if route == ("GET", "/api/v1/veo/get-1080p-video"):
            return self._rendition(req, task_id, "1080p")
        if route == ("POST", "/api/v1/veo/get-4k-video"):
            return self._rendition(req, str(body.get("taskId") or ""), "4k")
        if route == ("GET", "/api/v1/chat/credit"):
            return reply(_kie(200, "success", 100))
        if route == ("POST", "/api/v1/veo/generate"):
            return self._submit(req, "veo", str(body.get("prompt") or ""), body)
        if route == ("POST", "/api/v1/veo/extend"):  # §1.8: a new task, stitched result
            if not str(body.get("taskId") or "").strip():
                return reply(_kie(422, "taskId is required"))
            return self._submit(req, "veo", f"stitched {body.get('prompt') or ''}", body)
        if route == ("POST", "/api/v1/runway/generate"):
            return self._submit(req, "runway", str(body.get("prompt") or ""), body)
        if route == ("POST", "/api/v1/jobs/createTask"):
            data = body.get("input")
            if not body.get("model"):
                return reply(_kie(422, "model is required"))
            prompt = str(data.get("prompt") or "") if isinstance(data, dict) else ""
            return self._submit(req, "market", prompt, body)
        return reply(_kie(404, "not found"), status=404)

    def _submit(self, req: FakeRequest, kind: str, prompt: str, body: dict[str, Any]) -> FakeReply:
        if not prompt.strip():
            return reply(_kie(422, "prompt is required"))
        scenario = parse_scenario(prompt)
        if scenario.name == "maintenance":  # refused before any task exists
            return reply(_kie(455, "Service unavailable"))
        task_id = self.state.new_task(kind, prompt, body)
        if scenario.name == "lostreply":  # created, then the answer is an error page
            return reply(_kie(500, "Server Error"), status=500)
        callback_url = body.get("callBackUrl")
        if isinstance(callback_url, str) and callback_url.startswith("http"):
            file_url = self.file_url(req, task_id)
            self.state.call_back_later(
                task_id, callback_url,
                lambda step: self._callback(task_id, step, kind, file_url, False))
        answer = reply(_kie(200, "success", {"taskId": task_id}))
        if scenario.name == "slowreply":  # created, answered after the caller gave up
            answer.delay = float(scenario.n)
        return answer

    def callback(self, task_id: str, step: str, forged: bool = False) -> Outbound | None:
        kind = task_id.split("_", 1)[0]
        return self._callback(task_id, step, kind, f"http://127.0.0.1/files/{task_id}.mp4",
                              forged)

    def _callback(self, task_id: str, step: str, kind: str, url: str,
                  forged: bool) -> Outbound:
        """The documented callback (§1.4, §2.3, §3.1), signed as KIE signs it (§1.5)."""
        ok = step in ("success", "stitched", "objresult")
        if kind == "veo":
            body = (_kie(200, "Veo3.1 video generated successfully.",
                         {"taskId": task_id, "info": {"resultUrls": [url]}, "fallbackFlag": False})
                    if ok else
                    _kie(400, MODERATION_MSG, {"taskId": task_id, "fallbackFlag": False}))
        elif kind == "runway":
            body = _kie(200 if ok else 400, "All generated successfully." if ok
                        else RUNWAY_MODERATION,
                        {"task_id": task_id, "video_id": "v1", "video_url": url if ok else "",
                         "image_url": ""})
        else:
            body = _kie(200 if ok else 501, "Playground task completed successfully." if ok
                        else "Playground task failed.", _market_record(task_id, step, url, 9))
        headers: dict[str, str] = {}
        key = self.state.webhook_key
        if key:
            stamp = str(int(time.time()))
            signature = sign_callback("wrong-key" if forged else key, task_id, stamp)
            headers.update({"X-Webhook-Timestamp": stamp, "X-Webhook-Signature": signature})
        return Outbound(headers, json.dumps(body).encode())

    def _rendition(self, req: FakeRequest, task_id: str, which: str) -> FakeReply:
        """§1.6/§1.7: "not ready" answers while the HD or 4K version is being made."""
        key = f"{which}:{task_id}"
        with self.state.lock:
            k = self.state.polls[key] = self.state.polls.get(key, 0) + 1
        url = f"{req.server_url}/files/{task_id}_{which}.mp4"
        if which == "1080p":
            if k <= 2:
                return reply(_kie(400, "1080P is processing. It should be ready in 1-2 "
                                       "minutes. Please check back shortly."))
            return reply(_kie(200, "success", {"resultUrl": url}))
        if k == 1:
            return reply(_kie(200, "success", {"taskId": task_id, "resultUrls": None,
                                               "imageUrls": None}))
        if k <= 3:
            return reply(_kie(422, "4k is processing. It should be ready in 5-10 minutes. "
                                   "Please check back shortly.", {"resultUrls": None}))
        return reply(_kie(422, "The video has been generated successfully",
                          {"resultUrls": [url], "imageUrls": []}))

    def _poll(self, req: FakeRequest, task_id: str, kind: str) -> FakeReply:
        if not task_id:
            return reply(_kie(400, "taskId parameter is required"))
        _, step, k = self.state.poll(task_id)
        if step == "http500":
            return reply(_kie(500, "Server Error"), status=500)
        if step == "html502":
            return text_reply(502, "<html><body>Bad Gateway</body></html>")
        if step == "garbage":
            return text_reply(200, "not json{{", "text/plain")
        if step == "ratelimited":
            return reply(_kie(429, "Rate limit exceeded"), status=429,
                         headers={"Retry-After": "1"})
        if step == "auth":
            return reply(_kie(401, "You do not have access permissions"))
        if step == "notfound":  # each family's documented "unknown task" answer
            return reply(_kie(422, "record is null.") if kind == "veo"
                         else _kie(404, "Task not found"))
        if step == "expired":
            return reply(_kie(422, "Temporarily supports records within 14 days."))
        url = self.file_url(req, task_id)
        record = (_veo_record(task_id, step, url) if kind == "veo" else
                  _runway_record(task_id, step, url) if kind == "runway" else
                  _market_record(task_id, step, url, k))
        return reply(_kie(200, "success", record))


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
    elif step in ("upstream", "canceled"):
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
    elif step in ("upstream", "canceled"):
        record.update(state="fail", failCode="500",
                      failMsg="Internal Error, Please try again later.")
    return record


def _runway_record(task_id: str, step: str, url: str) -> dict[str, Any]:
    record: dict[str, Any] = {
        "taskId": task_id, "parentTaskId": "", "state": "generating",
        "generateParam": {"prompt": "…", "imageUrl": "", "expandPrompt": True},
        "generateTime": "2026-11-22 10:25:00", "videoInfo": None, "failCode": None,
        "failMsg": "", "expireFlag": 0,
    }
    if step in ("success", "nourl", "stitched", "objresult"):
        record.update(state="success", videoInfo={
            "videoId": "v1", "taskId": task_id, "videoUrl": url if step != "nourl" else "",
            "imageUrl": ""})
    elif step == "moderation":
        record.update(state="fail", failCode=400, failMsg=RUNWAY_MODERATION)
    elif step in ("upstream", "canceled"):
        record.update(state="fail", failCode=500, failMsg="Internal server error")
    return record


