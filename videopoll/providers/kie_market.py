"""KIE.ai Market jobs API (Sora 2, Seedance, …): ``createTask`` and ``recordInfo``.

``input`` is model-specific (providers.md §2.1), so each model's field names live here.
"""

from __future__ import annotations

from typing import Any

from videopoll.models import GenerationSpec, ProviderResponse
from videopoll.providers.base import ModelInfo, Provider
from videopoll.providers.kie_common import KIE_ACCOUNT, callback_task_id, raise_for_submit

_SORA_ASPECT = {"16:9": "landscape", "9:16": "portrait"}


def market_input(model: ModelInfo, spec: GenerationSpec) -> dict[str, Any]:
    """The ``input`` object for one model, in that model's own field names."""
    fields: dict[str, Any] = {"prompt": spec.prompt}
    if model.name.startswith("sora-2"):
        fields.update(aspect_ratio=_SORA_ASPECT[spec.aspect_ratio], n_frames="10",
                      remove_watermark=True, upload_method="s3")
        if spec.image_urls:
            fields["image_urls"] = spec.image_urls
    elif model.name == "seedance-2":
        fields.update(aspect_ratio=spec.aspect_ratio, duration=spec.duration_seconds,
                      resolution="720p", generate_audio=False)
        if spec.image_urls:
            fields["first_frame_url"] = spec.image_urls[0]
    else:  # seedance-1.5-pro
        fields.update(aspect_ratio=spec.aspect_ratio, duration=str(spec.duration_seconds),
                      resolution="720p")
        if spec.image_urls:
            fields["input_urls"] = spec.image_urls
    return fields


class KieMarketProvider(Provider):
    family = "kie_market"
    rate_account = KIE_ACCOUNT
    pushes_callbacks = True

    def callback_task_id(self, body: Any, headers: dict[str, str], now: float) -> str:
        return callback_task_id(body, headers, self.webhook_key, now, self.callback_max_age)

    def submit(self, model: ModelInfo, spec: GenerationSpec, callback_url: str | None) -> str:
        variant = "image" if spec.image_urls and "image" in model.provider_ids else "text"
        body: dict[str, Any] = {
            "model": model.provider_ids[variant],
            "input": market_input(model, spec),
        }
        if callback_url:
            body["callBackUrl"] = callback_url
        return raise_for_submit(self.request("POST", "/api/v1/jobs/createTask", json=body,
                                             creates_task=True))

    def fetch(self, task_id: str, variant: str | None = None) -> ProviderResponse:
        return self.request("GET", "/api/v1/jobs/recordInfo", params={"taskId": task_id})
