"""KIE.ai's Runway API: ``/api/v1/runway/generate`` and ``record-detail`` (providers.md §3.1).

Its own record shape (``state`` wait/queueing/generating/success/fail, the video in
``videoInfo.videoUrl``, ``expireFlag`` 1 once the 14-day link is gone) is read by
``shapes.RunwayRecordNormalizer``; its callback is snake_case (``data.task_id``).
"""

from __future__ import annotations

from typing import Any

from videopoll.models import GenerationSpec, ProviderResponse
from videopoll.providers.base import ModelInfo
from videopoll.providers.kie.adapter import KieProvider
from videopoll.providers.kie.common import raise_for_submit
from videopoll.providers.kie.shapes import RUNWAY_CHAIN

# The bare name is direct Runway's (``runway``); through KIE it is ``kie_runway:runway-gen4``.
_RUNWAY = ModelInfo(name="runway-gen4", family="kie_runway", durations=(5, 10),
                    aspect_ratios=("16:9", "4:3", "1:1", "3:4", "9:16"), max_images=1,
                    default_duration=5, alias=False)


class KieRunwayProvider(KieProvider):
    family = "kie_runway"
    chain = RUNWAY_CHAIN
    models = (_RUNWAY,)

    def submit(self, model: ModelInfo, spec: GenerationSpec, callback_url: str | None) -> str:
        body: dict[str, Any] = {
            "prompt": spec.prompt,
            "duration": spec.duration_seconds,
            # 10-second videos rule out 1080p (§3.1); 720p works for both durations
            "quality": "720p",
            "aspectRatio": spec.aspect_ratio,
            "waterMark": "",
        }
        if spec.image_urls:
            body["imageUrl"] = spec.image_urls[0]
        if callback_url:
            body["callBackUrl"] = callback_url
        return raise_for_submit(self.request("POST", "/api/v1/runway/generate", json=body,
                                             creates_task=True))

    def fetch(self, task_id: str, variant: str | None = None) -> ProviderResponse:
        return self.request("GET", "/api/v1/runway/record-detail", params={"taskId": task_id})
