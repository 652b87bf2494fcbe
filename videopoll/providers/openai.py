"""OpenAI Videos API (Sora 2): ``POST /videos``, ``GET /videos/{id}``, ``/videos/{id}/content``.

Lifecycle: OpenAI removed the Videos API and the ``sora-2*`` models on 2026-09-24
(providers.md §4). The adapter stays because OpenAI-compatible resellers serve the same API:
point ``OPENAI_BASE_URL`` at one. ``OPENAI_API_KEY`` and ``OPENAI_WEBHOOK_SECRET`` as usual.

Shape of the exchange (providers.md §4.1-4.3):

- The video object has no URL: a completed video is downloaded from ``/videos/{id}/content``
  with the API key, so the normalizer builds that URL and ``download_headers`` adds the key
  (same origin only).
- There is no per-request webhook field. Webhooks are set per project in the dashboard and
  signed with Standard Webhooks; the event names only the video id. ``submit`` therefore
  ignores ``callback_url``: the deployer points the project webhook at
  ``/callbacks/openai`` once.
- Cancel: ``DELETE /videos/{id}`` *deletes* a video and its assets. The docs do not say it
  stops a render (or its bill), nor what the status endpoint answers afterwards, so it is not
  used as a cancel (``can_cancel`` False): the job is canceled on our side only.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar
from urllib.parse import quote

from videopoll.errors import PermanentError, VideopollError
from videopoll.models import ErrorCode, GenerationSpec, PollResult, PollState, ProviderResponse
from videopoll.normalizers import (
    LAST_RESORT,
    Normalizer,
    guarded,
    json_body,
    run_chain,
    sample_of,
    warn_unknown,
)
from videopoll.providers import standard_webhooks
from videopoll.providers.base import CallbackOutcome, CallbackRequest, ModelInfo, Provider
from videopoll.providers.fields import as_dict, as_progress, as_str, as_text, dig
from videopoll.providers.http import Stage, callback_task, http_error, task_id_from
from videopoll.ratelimit import Limit

BASE_URL = "https://api.openai.com/v1"
SIZES = {"16:9": "1280x720", "9:16": "720x1280"}
# ``error.code`` values of a failed video are [UNCONFIRMED] (providers.md §4.2); the guide
# documents guardrails (minors, real people, copyrighted material, faces in input images), so
# codes and messages are read by their wording.
_MODERATION = re.compile(r"moderat|content.?polic|safety|guardrail|blocked|violat|flagged|"
                         r"not allowed|prohibited", re.IGNORECASE)
_ASSET = re.compile(r"input.?reference|image.?url|fetch|download|unreachable|invalid.?image",
                    re.IGNORECASE)
_TIMEOUT = re.compile(r"time.?out|timed out|deadline", re.IGNORECASE)


def _sora(name: str) -> ModelInfo:
    # KIE Market owns the bare names sora-2/sora-2-pro: these are openai:sora-2 (alias False).
    # seconds "4"/"8"/"12" ([SDK] video_seconds.py; default "4"); the guide's later "16"/"20"
    # are left out until a reseller that serves them is in use.
    return ModelInfo(name=name, family="openai", durations=(4, 8, 12),
                     aspect_ratios=tuple(SIZES), max_images=1, default_duration=4,
                     provider_model=name, alias=False)


def classify_failure(text: str) -> ErrorCode:
    """Taxonomy code of a failed video, from its ``error`` code and message."""
    if is_moderation(text):
        return ErrorCode.MODERATION_REJECTED
    if _ASSET.search(text):
        return ErrorCode.ASSET_FETCH_FAILED
    if _TIMEOUT.search(text):
        return ErrorCode.PROVIDER_TIMEOUT
    return ErrorCode.UNKNOWN_PROVIDER_ERROR


def is_moderation(text: str) -> bool:
    return bool(_MODERATION.search(text))


def error_text(error: Any) -> str:
    """``"<code>: <message>"`` of an OpenAI ``error`` object (or whatever came instead)."""
    if not isinstance(error, dict):
        return as_text(error)
    code, message = as_text(error.get("code")), as_text(error.get("message"))
    return f"{code}: {message}" if code and message else code or message


class OpenAIVideoObjectNormalizer(Normalizer):
    """The ``video`` object: ``status`` queued/in_progress/completed/failed and ``progress``.

    The output URL is ``{base}/videos/{id}/content``, the documented download endpoint.
    """

    name = "openai_video_object"
    KNOWN: ClassVar[frozenset[str]] = frozenset({"queued", "in_progress", "completed", "failed"})

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def parse(self, body: Any) -> PollResult | None:
        if not isinstance(body, dict) or not isinstance(body.get("status"), str):
            return None
        if body.get("object") != "video" and not as_str(body.get("id")):
            return None
        status = body["status"].strip().lower()
        progress = as_progress(body.get("progress"))
        if status == "completed":
            video_id = as_str(body.get("id"))
            urls = [content_url(self.base_url, video_id)] if video_id else []
            return self.result(PollState.SUCCEEDED, output_urls=urls, progress=100)
        if status == "failed":
            text = error_text(body.get("error")) or "the video failed"
            return self.result(PollState.FAILED, error_code=classify_failure(text),
                               provider_message=text)
        if status == "expired":  # Batch output past its 24 h (providers.md §10.1)
            return self.result(PollState.FAILED, error_code=ErrorCode.PROVIDER_TIMEOUT,
                               provider_message="the video expired")
        if status not in self.KNOWN:
            warn_unknown(self.name, "status", body["status"])
        queued = status == "queued"
        return self.result(PollState.QUEUED if queued else PollState.RUNNING, progress=progress)


def content_url(base_url: str, video_id: str) -> str:
    return f"{base_url}/videos/{quote(video_id, safe='')}/content?variant=video"


class OpenAIProvider(Provider):
    family = "openai"
    config_name = "openai"
    default_base_url = BASE_URL
    models = (_sora("sora-2"), _sora("sora-2-pro"))
    rate_account = "openai"
    # Per-tier RPM from the model pages (providers.md §4.3, [3P]): sora-2 tier 1 is 25 RPM,
    # sora-2-pro tier 1 only 10. One bucket serves both models, so submits take the lowest
    # documented figure (10/min). Limits for GET are [UNCONFIRMED]; the guide polls one video
    # every 10-20 s, and 1/s keeps ~15 videos in flight without hammering a tier-1 account.
    submit_limit = Limit(rate=10 / 60, burst=3)
    status_limit = Limit(rate=1.0, burst=5)
    pushes_callbacks = True  # per-project dashboard webhooks, not per request
    signs_callbacks = True
    can_cancel = False  # DELETE /videos/{id} deletes; see the module docstring

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.chain: tuple[Normalizer, ...] = (OpenAIVideoObjectNormalizer(self.base_url),
                                              *LAST_RESORT)

    def submit(self, model: ModelInfo, spec: GenerationSpec, callback_url: str | None) -> str:
        # callback_url is not sent: the API has no per-request webhook (see module docstring)
        body: dict[str, Any] = {
            "model": model.remote_id,
            "prompt": spec.prompt,
            "seconds": str(spec.duration_seconds),  # a string enum, not a number
            "size": SIZES.get(spec.aspect_ratio, SIZES["16:9"]),
        }
        if spec.image_urls:
            body["input_reference"] = {"image_url": spec.image_urls[0]}
        resp = self.request("POST", "/videos", json=body, creates_task=True)
        if not 200 <= resp.http_status < 300:
            raise self._http_error(resp, "submit")
        return task_id_from(dig(resp.body, "id"), resp.text_sample)

    def fetch(self, task_id: str, variant: str | None = None) -> ProviderResponse:
        return self.request("GET", f"/videos/{quote(task_id, safe='')}")

    def normalize(self, resp: ProviderResponse) -> PollResult:
        return guarded(resp, self._judge)

    def _judge(self, resp: ProviderResponse) -> PollResult:
        if not 200 <= resp.http_status < 300:
            raise self._http_error(resp, "status")
        return run_chain(self.chain, json_body(resp), sample_of(resp))

    @staticmethod
    def _http_error(resp: ProviderResponse, stage: Stage) -> VideopollError:
        error = as_dict(dig(resp.body, "error"))
        text = error_text(error)
        # OpenAI answers an exhausted balance with 429 ``insufficient_quota`` (its general
        # error codes, not in providers.md): waiting will not help, so it is not a rate limit.
        if resp.http_status == 429 and as_str(error.get("code")) == "insufficient_quota":
            return PermanentError(ErrorCode.INSUFFICIENT_CREDITS, text)
        return http_error(resp, stage, text, moderation=is_moderation)

    def will_push(self) -> bool:
        # webhooks are set up per project in OpenAI's dashboard; only a configured secret
        # says this deployment receives them, so polling stays at its normal pace otherwise
        return self.config.secret("webhook_secret") is not None

    def callback(self, req: CallbackRequest) -> CallbackOutcome:
        """``video.completed`` / ``video.failed`` events name the video in ``data.id``.

        One project webhook carries every event type of the project; events about anything
        but videos are acknowledged and ignored (a 4xx would only make OpenAI retry for 72 h).
        """
        standard_webhooks.verify(req, self.config.secret("webhook_secret"),
                                 self.callback_max_age)
        kind = as_str(dig(req.body, "type"))
        if kind and not kind.startswith("video."):
            return CallbackOutcome()
        return CallbackOutcome(task_id=callback_task(dig(req.body, "data", "id")))

