"""KIE.ai Veo 3.1: ``POST /api/v1/veo/generate`` and ``GET /api/v1/veo/record-info``."""

from __future__ import annotations

from typing import Any

from videopoll.models import GenerationSpec, ProviderResponse
from videopoll.providers.base import ModelInfo, Provider
from videopoll.providers.kie_common import KIE_ACCOUNT, raise_for_submit


class KieVeoProvider(Provider):
    family = "kie_veo"
    rate_account = KIE_ACCOUNT

    def submit(self, model: ModelInfo, spec: GenerationSpec, callback_url: str | None) -> str:
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

    def fetch(self, task_id: str) -> ProviderResponse:
        return self.request("GET", "/api/v1/veo/record-info", params={"taskId": task_id})
