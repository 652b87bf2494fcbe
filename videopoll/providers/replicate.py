"""Replicate predictions: official video models, polled at ``/predictions/{id}``.

Official models are run without a version: ``POST /models/{owner}/{name}/predictions`` with
``input`` in the model's own field names (providers.md §6). Users type Replicate's own
``owner/name``. ``REPLICATE_API_TOKEN`` (the name Replicate's clients read) or
``REPLICATE_API_KEY`` authenticates; ``REPLICATE_WEBHOOK_SECRET`` is the ``whsec_…`` from
``GET /v1/webhooks/default/secret``.

Every answer about a prediction (create, poll, webhook body) is the same prediction object,
so one normalizer reads them. Outputs and inputs are deleted an hour after an API prediction
ends (``data_removed``): a success whose output is gone is a failure, not "not ready yet".
"""

from __future__ import annotations

import re
from typing import Any, ClassVar
from urllib.parse import quote

from pydantic import SecretStr

from videopoll.errors import VideopollError
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
from videopoll.providers.base import (
    CallbackOutcome,
    CallbackRequest,
    ModelInfo,
    Provider,
    ProviderConfig,
)
from videopoll.providers.fields import as_dict, as_str, as_text, dig, first_urls, http_urls
from videopoll.providers.http import (
    Stage,
    callback_task,
    http_error,
    parse_retry_after,
    task_id_from,
)
from videopoll.ratelimit import Limit

BASE_URL = "https://api.replicate.com/v1"
# The 429 body says when the budget refills; Retry-After is [UNCONFIRMED] (providers.md §6).
_RESETS_IN = re.compile(r"resets in ~?\s*(\d+(?:\.\d+)?)\s*s", re.IGNORECASE)
# No moderation code is documented (§6, [UNCONFIRMED]); models word it themselves ("NSFW
# content detected.", "The input or output was flagged as sensitive. (E005)").
_MODERATION = re.compile(r"nsfw|flagged|sensitive|content.?polic|safety|moderat|violat|"
                         r"prohibited|inappropriate", re.IGNORECASE)
_ASSET = re.compile(r"(download|fetch|load|open|read).{0,40}(image|file|url)|"
                    r"(image|file|url).{0,40}(not found|unreachable|invalid)", re.IGNORECASE)
_TIMEOUT = re.compile(r"time.?out|timed out|deadline", re.IGNORECASE)
_CAPACITY = re.compile(r"capacity|overloaded|high demand", re.IGNORECASE)


class ReplicateConfig(ProviderConfig):
    """Also reads ``REPLICATE_API_TOKEN``, the variable Replicate's own docs set."""

    api_token: SecretStr | None = None


def _model(name: str, durations: tuple[int, ...], aspect_ratios: tuple[str, ...],
           min_images: int = 0) -> ModelInfo:
    return ModelInfo(name=name, family="replicate", durations=durations,
                     aspect_ratios=aspect_ratios, max_images=1, default_duration=durations[0],
                     provider_model=name, min_images=min_images)


# Inputs as far as known ([3P] schema copies; Replicate's model pages are the authority):
# google/veo-3: prompt, aspect_ratio 16:9|9:16, image; ``duration`` is documented for
#   veo-3.1 (4/6/8) and [UNCONFIRMED] for veo-3, which renders 8 s, so 8 is what we offer.
# minimax/hailuo-02: prompt, duration 6|10, resolution, first_frame_image; no aspect input
#   (16:9 output) and "768p" is [UNCONFIRMED] spelling (1080p is 6 s only).
# kwaivgi/kling-v2.1: image-to-video: start_image is required, duration 5|10, mode
#   standard|pro; it takes no aspect ratio (the start image's shape decides).
VEO3 = _model("google/veo-3", (8,), ("16:9", "9:16"))
HAILUO = _model("minimax/hailuo-02", (6, 10), ("16:9",))
KLING = _model("kwaivgi/kling-v2.1", (5, 10), ("16:9", "9:16", "1:1"), min_images=1)


def model_input(model: ModelInfo, spec: GenerationSpec) -> dict[str, Any]:
    """The ``input`` object in the model's own field names."""
    image = spec.image_urls[0] if spec.image_urls else None
    fields: dict[str, Any] = {"prompt": spec.prompt, "duration": spec.duration_seconds}
    if model.name == HAILUO.name:
        fields["resolution"] = "768p"
        if image:
            fields["first_frame_image"] = image
    elif model.name == KLING.name:
        fields["mode"] = "standard"
        if image:
            fields["start_image"] = image
    else:
        fields["aspect_ratio"] = spec.aspect_ratio
        if image:
            fields["image"] = image
    return fields


def classify_failure(status: str, error: str) -> ErrorCode:
    """Taxonomy code of a prediction that ended without success."""
    if status == "canceled":  # by us, or past its Cancel-After deadline once started
        return ErrorCode.CANCELED
    if status == "aborted":  # the deadline passed before it could start (not charged)
        return ErrorCode.PROVIDER_TIMEOUT
    if _MODERATION.search(error):
        return ErrorCode.MODERATION_REJECTED
    if _ASSET.search(error):
        return ErrorCode.ASSET_FETCH_FAILED
    if _TIMEOUT.search(error):  # predictions are stopped after 30 minutes of running
        return ErrorCode.PROVIDER_TIMEOUT
    if _CAPACITY.search(error):
        return ErrorCode.PROVIDER_RATE_LIMITED
    return ErrorCode.UNKNOWN_PROVIDER_ERROR


class ReplicatePredictionNormalizer(Normalizer):
    """The prediction object: ``status`` with ``output`` (a URL, or a list of URLs)."""

    name = "replicate_prediction"
    QUEUED: ClassVar[frozenset[str]] = frozenset({"starting"})
    ENDED: ClassVar[frozenset[str]] = frozenset({"failed", "canceled", "aborted"})
    KNOWN: ClassVar[frozenset[str]] = QUEUED | ENDED | {"processing", "succeeded"}

    def parse(self, body: Any) -> PollResult | None:
        if not isinstance(body, dict) or not as_str(body.get("id")):
            return None
        raw = body.get("status")
        if not isinstance(raw, str):
            return None
        status = raw.strip().lower()
        if status == "succeeded":
            output = body.get("output")
            urls = http_urls(output) or first_urls(as_dict(output), "video", "url")
            if not urls and body.get("data_removed") is True:
                return self.result(PollState.FAILED, error_code=ErrorCode.OUTPUT_MISSING,
                                   provider_message="Replicate removed the output (API "
                                                    "predictions are kept one hour)")
            return self.result(PollState.SUCCEEDED, output_urls=urls, progress=100)
        if status in self.ENDED:
            error = as_text(body.get("error"))
            return self.result(PollState.FAILED, error_code=classify_failure(status, error),
                               provider_message=error or f"prediction {status}")
        if status not in self.KNOWN:
            warn_unknown(self.name, "status", raw)
        return self.result(PollState.QUEUED if status in self.QUEUED else PollState.RUNNING)


CHAIN: tuple[Normalizer, ...] = (ReplicatePredictionNormalizer(), *LAST_RESORT)


def with_retry_after(resp: ProviderResponse) -> ProviderResponse:
    """A 429 without ``Retry-After`` waits as long as its body says ("resets in ~30s")."""
    if resp.http_status != 429 or resp.retry_after is not None:
        return resp
    match = _RESETS_IN.search(as_text(dig(resp.body, "detail")) or resp.text_sample)
    seconds = parse_retry_after(match.group(1)) if match else None
    return resp.model_copy(update={"retry_after": seconds}) if seconds is not None else resp


class ReplicateProvider(Provider):
    family = "replicate"
    config_name = "replicate"
    config_class: ClassVar[type[ProviderConfig]] = ReplicateConfig
    default_base_url = BASE_URL
    models = (VEO3, HAILUO, KLING)
    rate_account = "replicate"
    # providers.md §6: create 600/min, every other endpoint 3000/min, short bursts allowed
    # (an account with little credit gets less; its 429s carry their own wait).
    submit_limit = Limit(rate=10.0, burst=10)
    status_limit = Limit(rate=50.0, burst=50)
    pushes_callbacks = True
    signs_callbacks = True
    can_cancel = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.api_key = self.api_key or self.config.secret("api_token")

    def submit(self, model: ModelInfo, spec: GenerationSpec, callback_url: str | None) -> str:
        owner, _, name = model.remote_id.partition("/")
        body: dict[str, Any] = {"input": model_input(model, spec)}
        if callback_url:
            body["webhook"] = callback_url
            body["webhook_events_filter"] = ["completed"]  # only the end wakes a poll
        path = f"/models/{quote(owner, safe='')}/{quote(name, safe='')}/predictions"
        resp = self.request("POST", path, json=body, creates_task=True)
        if not 200 <= resp.http_status < 300:
            raise _http_error(resp, "submit")
        return task_id_from(dig(resp.body, "id"), resp.text_sample)

    def fetch(self, task_id: str, variant: str | None = None) -> ProviderResponse:
        return self.request("GET", f"/predictions/{quote(task_id, safe='')}")

    def normalize(self, resp: ProviderResponse) -> PollResult:
        return guarded(resp, _judge)

    def cancel(self, task_id: str) -> bool:
        return self.best_effort("POST", f"/predictions/{quote(task_id, safe='')}/cancel") \
            is not None

    def callback(self, req: CallbackRequest) -> CallbackOutcome:
        """The body is the prediction object; its ``id`` is the task ``submit`` returned."""
        standard_webhooks.verify(req, self.config.secret("webhook_secret"),
                                 self.callback_max_age)
        return CallbackOutcome(task_id=callback_task(dig(req.body, "id")))



def _http_error(resp: ProviderResponse, stage: Stage) -> VideopollError:
    """Replicate's errors are problem documents: ``{"title", "detail", "status"}``."""
    text = as_text(dig(resp.body, "detail")) or as_text(dig(resp.body, "title"))
    return http_error(with_retry_after(resp), stage, text,
                      moderation=lambda t: bool(_MODERATION.search(t)))


def _judge(resp: ProviderResponse) -> PollResult:
    if not 200 <= resp.http_status < 300:
        raise _http_error(resp, "status")
    return run_chain(CHAIN, json_body(resp), sample_of(resp))
