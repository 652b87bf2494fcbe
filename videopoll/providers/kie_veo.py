"""KIE.ai Veo 3.1: generate, extend, and the status of either; the 1080p rendition.

``/api/v1/veo/extend`` starts a new task from an earlier one; record-info then carries the
stitched video in ``fullResultUrls`` (providers.md §1.8). ``get-1080p-video`` answers non-200
until the HD version is ready (§1.6); its answer is reshaped here into the record-info shape,
so the normalizer chain reads one Veo format.
"""

from __future__ import annotations

from typing import Any

from videopoll.models import GenerationSpec, ProviderResponse
from videopoll.providers.base import ModelInfo, Provider
from videopoll.providers.kie_common import KIE_ACCOUNT, callback_task_id, raise_for_submit

# "If the 1080P video is not ready yet, the endpoint may return a non-200 code" (§1.6): the
# documented "1080P is processing" text comes with 400; 422 and 5xx codes mean "not yet" too.
HD_NOT_READY = (400, 422, 500, 501)


class KieVeoProvider(Provider):
    family = "kie_veo"
    rate_account = KIE_ACCOUNT
    pushes_callbacks = True

    def callback_task_id(self, body: Any, headers: dict[str, str], now: float) -> str:
        return callback_task_id(body, headers, self.webhook_key, now, self.callback_max_age)

    def submit(self, model: ModelInfo, spec: GenerationSpec, callback_url: str | None) -> str:
        if spec.extend_task_id:
            return self._extend(model, spec, callback_url)
        body: dict[str, Any] = {
            "prompt": spec.prompt,
            "model": model.name,
            # The OpenAPI says aspect_ratio, the quickstart and callbacks say aspectRatio
            # (providers.md §1.2): send both so either reading of the server works.
            "aspect_ratio": spec.aspect_ratio,
            "aspectRatio": spec.aspect_ratio,
            "enableTranslation": True,
        }
        if spec.image_urls:
            body["imageUrls"] = spec.image_urls
        if callback_url:
            body["callBackUrl"] = callback_url
        return raise_for_submit(self.request("POST", "/api/v1/veo/generate", json=body,
                                             creates_task=True))

    def _extend(self, model: ModelInfo, spec: GenerationSpec, callback_url: str | None) -> str:
        body: dict[str, Any] = {"taskId": spec.extend_task_id, "prompt": spec.prompt,
                                "model": "fast" if model.name.endswith("_fast") else "quality"}
        if callback_url:
            body["callBackUrl"] = callback_url
        return raise_for_submit(self.request("POST", "/api/v1/veo/extend", json=body,
                                             creates_task=True))

    def fetch(self, task_id: str, variant: str | None = None) -> ProviderResponse:
        if variant == "1080p":
            return self._hd(task_id)
        return self.request("GET", "/api/v1/veo/record-info", params={"taskId": task_id})

    def _hd(self, task_id: str) -> ProviderResponse:
        resp = self.request("GET", "/api/v1/veo/get-1080p-video",
                            params={"taskId": task_id, "index": 0})
        body = resp.body if isinstance(resp.body, dict) else {}
        data = body.get("data")
        url = data.get("resultUrl") if isinstance(data, dict) else None
        if resp.http_status == 200 and body.get("code") == 200 and isinstance(url, str):
            record = {"taskId": task_id, "successFlag": 1,
                      "response": {"taskId": task_id, "resultUrls": [url],
                                   "resolution": "1080p"}}
            return resp.model_copy(update={"body": {"code": 200, "msg": "success",
                                                    "data": record}})
        if resp.http_status == 200 and body.get("code") in HD_NOT_READY:
            return resp.model_copy(update={"body": {"code": 200, "msg": "processing", "data": {
                "taskId": task_id, "successFlag": 0}}})
        return resp  # auth, credits, rate limits, unknown task: judged as usual
