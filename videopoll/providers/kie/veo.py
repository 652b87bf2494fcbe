"""KIE.ai Veo 3.1: generate, extend, and the status of either; the 1080p and 4K renditions.

``/api/v1/veo/extend`` starts a new task from an earlier one; record-info then carries the
new segment in ``resultUrls`` and the stitched video in ``fullResultUrls`` (providers.md
§1.8), which is what an extend job delivers; any other task's video is ``resultUrls``
(§1.3). ``get-1080p-video`` answers non-200 until the HD version is ready (§1.6), and
``get-4k-video`` answers 422 "4k is processing" to repeated requests until it is (§1.7), or
for good that its 4K version is unavailable; these answers are reshaped here into the record-info
shape, so the chain reads one Veo format.
"""

from __future__ import annotations

import re
from typing import Any

from videopoll.models import GenerationSpec, JobRecord, ProviderResponse
from videopoll.providers.base import ModelInfo
from videopoll.providers.fields import as_int, dig, http_urls
from videopoll.providers.kie.adapter import KieProvider
from videopoll.providers.kie.common import raise_for_submit

# "If the 1080P video is not ready yet, the endpoint may return a non-200 code" (§1.6): the
# documented "1080P is processing" text comes with 400; 422 and 5xx codes mean "not yet" too.
HD_NOT_READY = (400, 422, 500, 501)
_UHD_PROCESSING = re.compile(r"processing", re.IGNORECASE)
# "The 4K version of this video is unavailable. Please try a different video." (§1.7)
_UHD_UNAVAILABLE = re.compile(r"4k version .*unavailable", re.IGNORECASE)
VARIANTS = ("1080p", "4k")


def _veo(name: str, max_images: int = 2) -> ModelInfo:
    return ModelInfo(name=name, family="kie_veo", durations=(8,),
                     aspect_ratios=("16:9", "9:16"), max_images=max_images, default_duration=8)


class KieVeoProvider(KieProvider):
    family = "kie_veo"
    # REFERENCE_2_VIDEO (1-3 images) is Fast and Lite only (§1.2)
    models = (_veo("veo3"), _veo("veo3_fast", 3), _veo("veo3_lite", 3))
    extends = True
    renditions = VARIANTS

    def submit(self, model: ModelInfo, spec: GenerationSpec, callback_url: str | None) -> str:
        if spec.extend_task_id:
            return self._extend(model, spec, callback_url)
        body: dict[str, Any] = {
            "prompt": spec.prompt,
            "model": model.remote_id,
            # The OpenAPI says aspect_ratio, the quickstart and callbacks say aspectRatio
            # (providers.md §1.2): send both so either reading of the server works.
            "aspect_ratio": spec.aspect_ratio,
            "aspectRatio": spec.aspect_ratio,
            "enableTranslation": True,
        }
        if spec.image_urls:
            body["imageUrls"] = spec.image_urls
            if len(spec.image_urls) == 3:
                body["generationType"] = "REFERENCE_2_VIDEO"
        if callback_url:
            body["callBackUrl"] = callback_url
        return raise_for_submit(self.request("POST", "/api/v1/veo/generate", json=body,
                                             creates_task=True))

    def _extend(self, model: ModelInfo, spec: GenerationSpec, callback_url: str | None) -> str:
        tier = ("fast" if model.name.endswith("_fast") else
                "lite" if model.name.endswith("_lite") else "quality")
        body: dict[str, Any] = {"taskId": spec.extend_task_id, "prompt": spec.prompt,
                                "model": tier}
        if callback_url:
            body["callBackUrl"] = callback_url
        return raise_for_submit(self.request("POST", "/api/v1/veo/extend", json=body,
                                             creates_task=True))

    def status_of(self, job: JobRecord) -> ProviderResponse:
        resp = super().status_of(job)
        if job.spec is None or job.spec.extend_task_id is None or job.variant is not None:
            return resp
        return _stitched_first(resp)

    def fetch(self, task_id: str, variant: str | None = None) -> ProviderResponse:
        if variant == "1080p":
            return self._hd(task_id)
        if variant == "4k":
            return self._uhd(task_id)
        return self.request("GET", "/api/v1/veo/record-info", params={"taskId": task_id})

    def _hd(self, task_id: str) -> ProviderResponse:
        resp = self.request("GET", "/api/v1/veo/get-1080p-video",
                            params={"taskId": task_id, "index": 0})
        code = as_int(dig(resp.body, "code"))
        url = http_urls(dig(resp.body, "data", "resultUrl"))
        if resp.http_status == 200 and code == 200 and url:
            return _record(resp, task_id, url, "1080p")
        if resp.http_status == 200 and code in HD_NOT_READY:
            return _record(resp, task_id, [], "1080p")
        return resp  # auth, credits, rate limits, unknown task: judged as usual

    def _uhd(self, task_id: str) -> ProviderResponse:
        """The 4K rendition: repeated requests are how its progress is read (§1.7); the
        first one starts it (and costs extra credits), later ones answer 422 until ready."""
        resp = self.request("POST", "/api/v1/veo/get-4k-video",
                            json={"taskId": task_id, "index": 0})
        code = as_int(dig(resp.body, "code"))
        urls = http_urls(dig(resp.body, "data", "resultUrls"))
        message = str(dig(resp.body, "msg") or "")
        if _UHD_UNAVAILABLE.search(message):  # no 4K for this task: polling on cannot help
            return _record(resp, task_id, [], "4k", failure=message)
        if resp.http_status == 200 and code in (200, 422) and urls:
            return _record(resp, task_id, urls, "4k")
        if resp.http_status == 200 and (code == 200 or (code == 422 and
                                                        _UHD_PROCESSING.search(message))):
            return _record(resp, task_id, [], "4k")
        return resp


def _stitched_first(resp: ProviderResponse) -> ProviderResponse:
    """An extend's record-info with the stitched video as its ``resultUrls``, when it has one."""
    response = dig(resp.body, "data", "response")
    stitched = http_urls(response.get("fullResultUrls")) if isinstance(response, dict) else []
    if not stitched:
        return resp
    body = {**resp.body, "data": {**resp.body["data"],
                                   "response": {**response, "resultUrls": stitched}}}
    return resp.model_copy(update={"body": body})


def _record(resp: ProviderResponse, task_id: str, urls: list[str], resolution: str,
            failure: str = "") -> ProviderResponse:
    """A rendition answer in record-info's shape: done with ``urls``, still generating, or
    failed for good with ``failure`` (as errorCode 501, "generation failed")."""
    record: dict[str, Any] = {"taskId": task_id, "successFlag": 1 if urls else 0}
    if failure:
        record.update(successFlag=2, errorCode=501, errorMessage=failure)
    elif urls:
        record["response"] = {"taskId": task_id, "resultUrls": urls, "resolution": resolution}
    return resp.model_copy(update={"body": {"code": 200, "msg": "success", "data": record}})
