"""Runway's developer API, direct (providers.md §8): ``/image_to_video``, ``/text_to_video``,
``GET /tasks/{id}``, ``DELETE /tasks/{id}``. No webhooks: the job is polled.

Every call carries ``X-Runway-Version: 2024-11-06`` beside the Bearer key. ``ratio`` is in
pixels (``"1280:720"``), so our aspect ratios map to Runway's documented sizes.

Submit and "never pay twice" (the HTTP table of §8): 400, 401, 404 and 405 are refusals of the
request itself (no task exists); 429 is the only answer that proves "not accepted, try later".
502 and 503 are documented as "shedding load" and 504 as "overloaded": probably refused, but
a gateway answering 502/504 may sit in front of a backend that did create the task, and a 503
does not say which side gave up. Nothing proves the task was not created, so every 5xx stays
``SubmitOutcomeUnknownError`` (never resent blindly); only 429 is retried.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar
from urllib.parse import quote

from videopoll.errors import PermanentError
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
from videopoll.providers.base import ModelInfo, Provider
from videopoll.providers.fields import as_progress, as_str, as_text, http_urls
from videopoll.providers.http import http_error, task_id_from
from videopoll.ratelimit import Limit

BASE_URL = "https://api.dev.runwayml.com/v1"
API_VERSION = "2024-11-06"
# Runway's ratios are output sizes; these are the sizes its gen4 models list [3P].
RATIOS = {"16:9": "1280:720", "9:16": "720:1280", "4:3": "1104:832", "3:4": "832:1104",
          "1:1": "960:960", "21:9": "1584:672"}
_MODERATION = re.compile(r"safety|moderat|content polic", re.IGNORECASE)
_CREDITS = re.compile(r"credit", re.IGNORECASE)

# The bare ``runway-gen4`` is this family's (KIE's is ``kie_runway:runway-gen4``). §8 names both
# model ids; gen4_turbo is image-to-video only (one ``promptImage``) while gen4.5 also serves
# ``/text_to_video`` (Runway's model pages, not providers.md: [3P] here). Both take
# duration 5 or 10 here: gen4.5's wider range is [UNCONFIRMED]. gen4.5 is listed first so a
# text-only caller (the contract test) gets a model that needs no image.
MODELS = (
    ModelInfo(name="runway-gen4.5", family="runway", durations=(5, 10),
              aspect_ratios=("16:9", "9:16"), max_images=1, default_duration=5,
              provider_model="gen4.5"),
    ModelInfo(name="runway-gen4", family="runway", durations=(5, 10),
              aspect_ratios=tuple(RATIOS), max_images=1, min_images=1, default_duration=5,
              provider_model="gen4_turbo"),
)


def failure_code(code: str, failure: str) -> ErrorCode:
    """Taxonomy code of a FAILED task's ``failureCode`` (task-failures page, §8)."""
    upper = code.upper()
    if ".SAFETY." in f".{upper}.":  # SAFETY.INPUT.*, SAFETY.OUTPUT.*, INPUT_PREPROCESSING.SAFETY.*
        return ErrorCode.MODERATION_REJECTED
    if upper.startswith("ASSET."):
        return ErrorCode.ASSET_FETCH_FAILED
    if not upper and _MODERATION.search(failure):
        return ErrorCode.MODERATION_REJECTED
    # INTERNAL.BAD_OUTPUT.* is "retry, possibly with changed inputs": a fresh paid generation
    # the user should choose, not one we start (only provider_timeout resubmits), so it fails
    # as unknown like THIRD_PARTY.UNAVAILABLE and any code Runway adds.
    return ErrorCode.UNKNOWN_PROVIDER_ERROR


class RunwayTaskNormalizer(Normalizer):
    """The task object: ``status`` PENDING/THROTTLED/RUNNING/SUCCEEDED/FAILED/CANCELLED."""

    name = "runway_task"
    QUEUED: ClassVar[frozenset[str]] = frozenset({"PENDING", "THROTTLED"})

    def parse(self, body: Any) -> PollResult | None:
        status = body.get("status") if isinstance(body, dict) else None
        if not isinstance(status, str):
            return None
        if status in self.QUEUED:
            return self.result(PollState.QUEUED)
        if status == "RUNNING":
            return self.result(PollState.RUNNING,
                               progress=as_progress(body.get("progress"), scale=100))
        if status == "SUCCEEDED":
            return self.result(PollState.SUCCEEDED, output_urls=http_urls(body.get("output")),
                               progress=100)
        if status == "FAILED":
            code, failure = as_str(body.get("failureCode")), as_text(body.get("failure"))
            return self.result(PollState.FAILED, error_code=failure_code(code, failure),
                               provider_message=f"{code} {failure}".strip())
        if status == "CANCELLED":
            return self.result(PollState.FAILED, error_code=ErrorCode.CANCELED,
                               provider_message="CANCELLED")
        warn_unknown(self.name, "status", status)
        return self.result(PollState.RUNNING)


CHAIN: tuple[Normalizer, ...] = (RunwayTaskNormalizer(), *LAST_RESORT)


class RunwayProvider(Provider):
    family = "runway"
    config_name = "runway"
    default_base_url = BASE_URL
    models = MODELS
    rate_account = "runway"
    # Runway's limits are per usage tier and not in providers.md: conservative defaults.
    status_limit = Limit(rate=5.0, burst=10)
    submit_limit = Limit(rate=1.0, burst=5)
    can_cancel = True

    def auth_headers(self) -> dict[str, str]:
        return {**super().auth_headers(), "X-Runway-Version": API_VERSION}

    def submit(self, model: ModelInfo, spec: GenerationSpec, callback_url: str | None) -> str:
        """POST /image_to_video or /text_to_video; Runway takes no callback URL."""
        if len(spec.image_urls) < model.min_images:
            raise PermanentError(ErrorCode.VALIDATION_FAILED,
                                 f"{model.name} is image-to-video: it needs an image")
        body: dict[str, Any] = {"model": model.remote_id, "promptText": spec.prompt,
                                "ratio": RATIOS.get(spec.aspect_ratio, RATIOS["16:9"]),
                                "duration": spec.duration_seconds}
        path = "/text_to_video"
        if spec.image_urls:
            body["promptImage"], path = spec.image_urls[0], "/image_to_video"
        resp = self.request("POST", path, json=body, creates_task=True)
        if not 200 <= resp.http_status < 300:
            if resp.http_status == 400 and _CREDITS.search(resp.text_sample):
                raise PermanentError(ErrorCode.INSUFFICIENT_CREDITS, resp.text_sample[:300])
            raise http_error(resp, "submit", moderation=lambda t: bool(_MODERATION.search(t)))
        task = resp.body.get("id") if isinstance(resp.body, dict) else None
        return task_id_from(task, resp.text_sample)

    def fetch(self, task_id: str, variant: str | None = None) -> ProviderResponse:
        return self.request("GET", f"/tasks/{quote(task_id, safe='')}")

    def normalize(self, resp: ProviderResponse) -> PollResult:
        return guarded(resp, _judge)

    def cancel(self, task_id: str) -> bool:
        """DELETE /tasks/{id} cancels a running task (and deletes a finished one)."""
        return self.best_effort("DELETE", f"/tasks/{quote(task_id, safe='')}") is not None


def _judge(resp: ProviderResponse) -> PollResult:
    """One ``GET /tasks/{id}`` answer → ``PollResult``; HTTP faults raise (404 = unknown)."""
    if resp.http_status != 200:
        raise http_error(resp, "status")
    return run_chain(CHAIN, json_body(resp), sample_of(resp))
