"""Luma Dream Machine (Ray 2): ``POST /generations``, ``GET /generations/{id}`` (providers.md §9.1).

The generation object is the whole exchange: the create answers it, the status endpoint
returns it, and the per-request ``callback_url`` receives it on every state change (unsigned;
Luma retries 3 times, 100 ms apart, 5 s timeout). Errors are ``{"detail": …}`` (FastAPI: a
string, or a list of ``{"msg": …}`` for validation). Rate limits, the wording of moderation
failures and how long asset URLs live are [UNCONFIRMED].
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from videopoll.errors import PermanentError, VideopollError
from videopoll.models import ErrorCode, GenerationSpec, ProviderResponse
from videopoll.normalizers import LAST_RESORT, Normalizer
from videopoll.providers.base import ModelInfo
from videopoll.providers.fields import as_dict, as_str, as_text, http_urls
from videopoll.providers.http import Stage
from videopoll.providers.rest import RestProvider, TaskStateNormalizer, classify_text, segment
from videopoll.ratelimit import Limit

BASE_URL = "https://api.lumalabs.ai/dream-machine/v1"
_CREDITS = re.compile(r"credit|balance|billing|payment", re.IGNORECASE)


def _ray(name: str) -> ModelInfo:
    # duration "5s"/"9s" ([SDK] request fields); two keyframes: frame0 start, frame1 end
    return ModelInfo(name=name, family="luma", durations=(5, 9),
                     aspect_ratios=("16:9", "9:16", "1:1", "4:3", "3:4", "21:9", "9:21"),
                     max_images=2, default_duration=5)


def detail_text(body: Any) -> str:
    """Luma's ``detail``: a message, or FastAPI's list of validation errors."""
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list):
        return as_text("; ".join(as_str(as_dict(item).get("msg")) or as_text(item)
                                 for item in detail[:5]))
    return as_text(detail)


class LumaGenerationNormalizer(TaskStateNormalizer):
    """The generation object: ``state`` queued/dreaming/completed/failed, ``assets.video``."""

    name = "luma_generation"
    state_field = "state"
    QUEUED = frozenset({"queued"})
    RUNNING = frozenset({"dreaming"})
    SUCCEEDED = frozenset({"completed"})
    FAILED = frozenset({"failed"})

    def urls(self, task: dict[str, Any]) -> list[str]:
        # assets.video is the result; progress_video is a preview and never the output
        return http_urls(as_dict(task.get("assets")).get("video"))

    def failure(self, task: dict[str, Any]) -> tuple[ErrorCode, str]:
        reason = as_text(task.get("failure_reason")) or "the generation failed"
        return classify_text(reason), reason


class LumaProvider(RestProvider):
    family = "luma"
    config_name = "luma"
    default_base_url = BASE_URL
    models = (_ray("ray-2"), _ray("ray-flash-2"))
    rate_account = "luma"
    # Luma documents no request rates ([UNCONFIRMED], §9.1): a conservative budget that keeps
    # a few dozen generations polled every few seconds and starts at most one every 5 s.
    status_limit = Limit(rate=2.0, burst=5)
    submit_limit = Limit(rate=0.2, burst=3)
    chain: ClassVar[tuple[Normalizer, ...]] = (LumaGenerationNormalizer(), *LAST_RESORT)

    def submit(self, model: ModelInfo, spec: GenerationSpec, callback_url: str | None) -> str:
        body: dict[str, Any] = {
            "prompt": spec.prompt,
            "model": model.remote_id,
            "aspect_ratio": spec.aspect_ratio,
            "duration": f"{spec.duration_seconds}s",
        }
        frames = {f"frame{i}": {"type": "image", "url": url}
                  for i, url in enumerate(spec.image_urls[:2])}
        if frames:
            body["keyframes"] = frames
        if callback_url:
            body["callback_url"] = callback_url
        # POST /generations: what the SDK and most integrations call. Newer docs also list
        # /generations/video with the same body; /generations keeps working for video and is
        # the path every stored source agrees on (providers.md §9.1).
        return self.accepted(self.request("POST", "/generations", json=body,
                                          creates_task=True), "id")

    def fetch(self, task_id: str, variant: str | None = None) -> ProviderResponse:
        return self.request("GET", f"/generations/{segment(task_id)}")

    def error_text(self, body: Any) -> str:
        return detail_text(body)

    def body_error(self, resp: ProviderResponse, stage: Stage) -> VideopollError | None:
        # An exhausted balance has no documented status code: a refused create whose detail
        # talks about credits is insufficient_credits, not a validation failure.
        if stage == "submit" and 400 <= resp.http_status < 500 and resp.http_status != 429:
            text = detail_text(resp.body)
            if _CREDITS.search(text):
                return PermanentError(ErrorCode.INSUFFICIENT_CREDITS, text)
        return None


__all__ = ["LumaGenerationNormalizer", "LumaProvider"]
