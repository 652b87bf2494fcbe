"""The one registry of provider families and public model names.

To add a provider: write ``providers/<family>.py`` with a ``Provider`` subclass, add one line
to ``PROVIDERS`` and its models to ``MODELS``, and record its payloads under
``tests/fixtures/`` so the normalizer and adapter tests cover it.
"""

from __future__ import annotations

from videopoll.providers.base import ModelInfo, Provider
from videopoll.providers.kie_market import KieMarketProvider
from videopoll.providers.kie_veo import KieVeoProvider

__all__ = ["MODELS", "PROVIDERS", "ModelInfo", "Provider", "get_model", "supported_models",
           "validate_options"]

PROVIDERS: dict[str, type[Provider]] = {
    "kie_veo": KieVeoProvider,
    "kie_market": KieMarketProvider,
}

def _veo(name: str) -> ModelInfo:
    return ModelInfo(name=name, family="kie_veo", durations=(8,), aspect_ratios=("16:9", "9:16"),
                     max_images=2, default_duration=8)


def _sora(name: str) -> ModelInfo:
    # Sora 2 on KIE takes n_frames "10" or "15"; our API caps durations at 10 s.
    return ModelInfo(name=name, family="kie_market", durations=(10,),
                     aspect_ratios=("16:9", "9:16"), max_images=1, default_duration=10,
                     provider_ids={"text": f"{name}-text-to-video",
                                   "image": f"{name}-image-to-video"})


def _seedance(name: str, provider_id: str) -> ModelInfo:
    # providers.md names Seedance's duration field but not its range; 5 and 10 s are the
    # values KIE's examples use. Widen when the live docs confirm more.
    return ModelInfo(name=name, family="kie_market", durations=(5, 10),
                     aspect_ratios=("16:9", "9:16", "1:1"), max_images=1, default_duration=5,
                     provider_ids={"text": provider_id})


MODELS: dict[str, ModelInfo] = {
    "veo3": _veo("veo3"),
    "veo3_fast": _veo("veo3_fast"),
    "sora-2": _sora("sora-2"),
    "sora-2-pro": _sora("sora-2-pro"),
    "seedance-1.5-pro": _seedance("seedance-1.5-pro", "bytedance/seedance-1.5-pro"),
    "seedance-2": _seedance("seedance-2", "bytedance/seedance-2"),
}


def get_model(name: str) -> ModelInfo:
    return MODELS[name]


def supported_models() -> list[str]:
    return sorted(MODELS)


def validate_options(
    model: ModelInfo, aspect_ratio: str, duration_seconds: int | None, image_count: int
) -> list[tuple[str, str]]:
    """(field, reason) for each option ``model`` does not support, in the caller's names."""
    problems = []
    if aspect_ratio not in model.aspect_ratios:
        problems.append(("aspectRatio",
                         f"{model.name} supports {', '.join(model.aspect_ratios)}"))
    if duration_seconds is not None and duration_seconds not in model.durations:
        allowed = ", ".join(str(d) for d in model.durations)
        problems.append(("durationSeconds", f"{model.name} supports {allowed} seconds"))
    if image_count > model.max_images:
        problems.append(("imageUrls", f"{model.name} takes at most {model.max_images} images"))
    return problems
