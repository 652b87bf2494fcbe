"""Veo 3.1 on the Gemini API (Developer API, an API key): ``predictLongRunning`` + operations.

The task id is the whole operation name (``models/veo-3.1-generate-preview/operations/…``),
slashes included: polling is ``GET /v1beta/{name}`` (providers.md §5.1). The video URL is a
Files API ``…/files/<id>:download?alt=media`` link that wants the key and redirects to
storage, so ``download_headers`` hands the key to the API's own origin only. There are no
push callbacks on this path; we poll.

Lifecycle warning (§5.1, §10.3): a gateway notice says Google retired the ``veo-3.1-*-preview``
ids on the Gemini API on 2026-10-22 (404 "is no longer available") [3P]. Check the live
model list before relying on this family; Vertex AI's ``veo-3.1-*-001`` are GA.
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import quote

from videopoll.models import GenerationSpec, PollResult, ProviderResponse
from videopoll.normalizers import LAST_RESORT, Normalizer, guarded
from videopoll.providers.base import ModelInfo, Provider, ProviderConfig
from videopoll.providers.fields import as_dict, as_list, dig, http_urls
from videopoll.providers.google.operations import (
    GoogleConfig,
    OperationNormalizer,
    instance,
    judge,
    submitted_operation,
    veo_model,
)
from videopoll.ratelimit import Limit

BASE_URL = "https://generativelanguage.googleapis.com"


class GeminiConfig(GoogleConfig):
    """GEMINI_BASE_URL and GEMINI_API_KEY (sent as ``x-goog-api-key``, never as Bearer)."""

    base_url: str = BASE_URL


class GeminiVideoOperationNormalizer(OperationNormalizer):
    """``response.generateVideoResponse.generatedSamples[i].video.uri`` (§5.1).

    The wire names are SDK-derived: singular ``generateVideoResponse`` around plural
    ``generatedSamples``. The SDK's own ``generatedVideos`` / ``generateVideosResponse``
    spellings are read too, in case a proxy hands back the converted form.
    """

    name = "gemini_video_operation"

    def payload(self, response: dict[str, Any]) -> dict[str, Any]:
        return as_dict(response.get("generateVideoResponse")
                       or response.get("generateVideosResponse"))

    def outputs(self, payload: dict[str, Any]) -> tuple[list[str], bool]:
        samples = as_list(payload.get("generatedSamples") or payload.get("generatedVideos"))
        urls = [u for s in samples for u in http_urls(dig(s, "video", "uri"))]
        return urls, bool(samples)


CHAIN: tuple[Normalizer, ...] = (GeminiVideoOperationNormalizer(), *LAST_RESORT)


class GeminiProvider(Provider):
    family = "gemini"
    config_name = "gemini"
    config_class: ClassVar[type[ProviderConfig]] = GeminiConfig
    default_base_url = BASE_URL
    models = (veo_model("veo-3.1-generate-preview", "gemini"),
              veo_model("veo-3.1-fast-generate-preview", "gemini"))
    rate_account = "gemini"
    # providers.md documents no Veo request budget for the Gemini API (the project's limits
    # show in AI Studio): a conservative 10 submits a minute, and a 429 RESOURCE_EXHAUSTED
    # backs us off anyway. Generation takes 11 s to 6 min [DOC], so polls are unhurried.
    submit_limit = Limit(rate=10 / 60, burst=2)
    status_limit = Limit(rate=1.0, burst=5)

    def auth_headers(self) -> dict[str, str]:
        return {"x-goog-api-key": self.api_key} if self.api_key else {}  # never Bearer

    def submit(self, model: ModelInfo, spec: GenerationSpec, callback_url: str | None) -> str:
        # callback_url is ignored: the Gemini API has no webhooks (§5.1 [UNCONFIRMED])
        parameters: dict[str, Any] = {
            "aspectRatio": spec.aspect_ratio,
            # the guide lists the values as strings ("4", "6", "8") and so do we
            "durationSeconds": str(spec.duration_seconds),
            # 1080p is 8 s only; 720p works for every duration we offer
            "resolution": "720p",
        }
        body = {"instances": [instance(spec.prompt, spec.image_urls, self.config, self.timeout)],
                "parameters": parameters}
        path = f"/v1beta/models/{quote(model.remote_id, safe='')}:predictLongRunning"
        return submitted_operation(self.request("POST", path, json=body, creates_task=True))

    def fetch(self, task_id: str, variant: str | None = None) -> ProviderResponse:
        return self.request("GET", f"/v1beta/{quote(task_id.lstrip('/'), safe='/')}")

    def normalize(self, resp: ProviderResponse) -> PollResult:
        return guarded(resp, lambda r: judge(r, CHAIN))

