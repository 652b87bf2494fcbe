"""KIE.ai Market jobs API (Sora 2, Seedance, Kling, Hailuo): ``createTask`` and ``recordInfo``.

``input`` is model-specific (providers.md §2.1), so each model's field names live here.
"""

from __future__ import annotations

from typing import Any

from videopoll.models import GenerationSpec, ProviderResponse
from videopoll.providers.base import ModelInfo
from videopoll.providers.kie.adapter import KieProvider
from videopoll.providers.kie.common import raise_for_submit
from videopoll.providers.kie.shapes import MARKET_CHAIN

_SORA_ASPECT = {"16:9": "landscape", "9:16": "portrait"}


def _sora(name: str) -> ModelInfo:
    # Sora 2 on KIE takes n_frames "10" or "15" (seconds).
    return ModelInfo(name=name, family="kie_market", durations=(10, 15),
                     aspect_ratios=("16:9", "9:16"), max_images=1, default_duration=10,
                     provider_ids={"text": f"{name}-text-to-video",
                                   "image": f"{name}-image-to-video"})


def _seedance(name: str, provider_id: str) -> ModelInfo:
    # providers.md names Seedance's duration field but not its range; 5 and 10 s are the
    # values KIE's examples use. Widen when the live docs confirm more.
    return ModelInfo(name=name, family="kie_market", durations=(5, 10),
                     aspect_ratios=("16:9", "9:16", "1:1"), max_images=1, default_duration=5,
                     provider_ids={"text": provider_id})


# Kling and Hailuo are also served directly (``kling``, ``minimax``), which answer to the
# bare names; through KIE they are ``kie_market:kling-2.6`` and ``kie_market:hailuo-02``.
# providers.md §2.1 shows ``kling-2.6/image-to-video`` in a callback example; the
# text-to-video id and the Hailuo ids are [UNCONFIRMED] and follow the same pattern.
_KLING = ModelInfo(name="kling-2.6", family="kie_market", durations=(5, 10),
                   aspect_ratios=("16:9", "9:16", "1:1"), max_images=1, default_duration=5,
                   provider_ids={"text": "kling-2.6/text-to-video",
                                 "image": "kling-2.6/image-to-video"}, alias=False)
_HAILUO = ModelInfo(name="hailuo-02", family="kie_market", durations=(6, 10),
                    aspect_ratios=("16:9",), max_images=1, default_duration=6,
                    provider_ids={"text": "hailuo/02-text-to-video",
                                  "image": "hailuo/02-image-to-video"}, alias=False)


def market_input(model: ModelInfo, spec: GenerationSpec) -> dict[str, Any]:
    """The ``input`` object for one model, in that model's own field names."""
    fields: dict[str, Any] = {"prompt": spec.prompt}
    if model.name.startswith("sora-2"):
        fields.update(aspect_ratio=_SORA_ASPECT[spec.aspect_ratio],
                      n_frames=str(spec.duration_seconds), remove_watermark=True,
                      upload_method="s3")
        if spec.image_urls:
            fields["image_urls"] = spec.image_urls
    elif model.name == "seedance-2":
        fields.update(aspect_ratio=spec.aspect_ratio, duration=spec.duration_seconds,
                      resolution="720p", generate_audio=False)
        if spec.image_urls:
            fields["first_frame_url"] = spec.image_urls[0]
    elif model.name == "seedance-1.5-pro":
        fields.update(aspect_ratio=spec.aspect_ratio, duration=str(spec.duration_seconds),
                      resolution="720p")
        if spec.image_urls:
            fields["input_urls"] = spec.image_urls
    elif model.name == "kling-2.6":
        fields.update(aspect_ratio=spec.aspect_ratio, duration=str(spec.duration_seconds))
        if spec.image_urls:
            fields["image_urls"] = spec.image_urls
    else:  # hailuo
        fields.update(duration=str(spec.duration_seconds), resolution="768P")
        if spec.image_urls:
            fields["image_url"] = spec.image_urls[0]
    return fields


class KieMarketProvider(KieProvider):
    family = "kie_market"
    chain = MARKET_CHAIN
    models = (_sora("sora-2"), _sora("sora-2-pro"),
              _seedance("seedance-1.5-pro", "bytedance/seedance-1.5-pro"),
              _seedance("seedance-2", "bytedance/seedance-2"), _KLING, _HAILUO)

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
