"""The one registry of provider families, and the model names users type.

Each family is one module or package under ``providers/`` that owns its API (see
``base.Provider``) and declares its models. ``PROVIDERS`` is the literal list of families;
everything else here is derived from it. Adding a family is its package and one line below.

A model answers to its bare name (``veo3``, ``kling-2.6``) and always to ``family:name``
(``kie_market:kling-2.6``). Where two families serve a model of the same name, one holds the
bare name (the other declares ``alias=False``), so a name never means two things.
"""

from __future__ import annotations

from videopoll.providers.ark import ArkProvider
from videopoll.providers.base import ModelInfo, Provider
from videopoll.providers.fal import FalProvider
from videopoll.providers.google import GeminiProvider, VertexProvider
from videopoll.providers.kie import KieMarketProvider, KieRunwayProvider, KieVeoProvider
from videopoll.providers.kling import KlingProvider
from videopoll.providers.luma import LumaProvider
from videopoll.providers.minimax import MiniMaxProvider
from videopoll.providers.openai import OpenAIProvider
from videopoll.providers.replicate import ReplicateProvider
from videopoll.providers.runway import RunwayProvider

__all__ = ["MODELS", "PROVIDERS", "ModelInfo", "Provider", "get_model", "model_for",
           "supported_models", "validate_options"]

PROVIDERS: dict[str, type[Provider]] = {
    "kie_veo": KieVeoProvider,
    "kie_market": KieMarketProvider,
    "kie_runway": KieRunwayProvider,
    "gemini": GeminiProvider,
    "vertex": VertexProvider,
    "openai": OpenAIProvider,
    "replicate": ReplicateProvider,
    "fal": FalProvider,
    "runway": RunwayProvider,
    "luma": LumaProvider,
    "ark": ArkProvider,
    "minimax": MiniMaxProvider,
    "kling": KlingProvider,
}


def _index(families: dict[str, type[Provider]]) -> dict[str, ModelInfo]:
    names: dict[str, ModelInfo] = {}
    for family, cls in families.items():
        if cls.family != family:
            raise RuntimeError(f"PROVIDERS[{family!r}] is {cls.__name__} ({cls.family!r})")
        for model in cls.models:
            if model.family != family:
                raise RuntimeError(f"{model.name} is declared by {family}, not {model.family}")
            keys = [model.qualified, *([model.name] if model.alias else [])]
            for key in keys:
                if key in names:
                    raise RuntimeError(f"model name {key!r} is claimed twice")
                names[key] = model
    return names


MODELS: dict[str, ModelInfo] = _index(PROVIDERS)


def get_model(name: str) -> ModelInfo:
    """The model a user's name means (bare or ``family:name``); ``KeyError`` if none."""
    return MODELS[name.strip()]


def model_for(family: str, name: str) -> ModelInfo:
    """The model a job names: jobs keep the bare name and their family."""
    return MODELS[f"{family}:{name}"]


def supported_models() -> list[str]:
    """Every distinct model once, by the name a user would type for it."""
    seen = {id(m): (m.name if MODELS.get(m.name) is m else m.qualified) for m in MODELS.values()}
    return sorted(seen.values())


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
    if image_count < model.min_images:
        problems.append(("imageUrls", f"{model.name} needs at least {model.min_images} image"
                                      f"{'s' if model.min_images > 1 else ''}"))
    return problems
