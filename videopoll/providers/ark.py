"""BytePlus ModelArk / Volcengine Ark: Seedance content generation tasks (providers.md §9.2).

``POST /contents/generations/tasks`` takes a ``content`` list (the prompt as a ``text`` item,
an image as an ``image_url`` item with ``role: first_frame``) and answers ``{"id": "cgt-…"}``;
``GET /contents/generations/tasks/{id}`` reads the task; ``DELETE`` on it cancels a task that
is still queued. Errors are ``{"error": {"code", "message"}}`` and the code says more than the
HTTP status: ``*SensitiveContentDetected*`` is moderation (input-side ones already at create,
HTTP 400), ``AccountOverdueError`` (403) is an unpaid account. The base URL is BytePlus's;
Volcengine (China) serves the same API at ``https://ark.cn-beijing.volces.com/api/v3``
(``ARK_BASE_URL``). Callback shape and signature are [UNCONFIRMED]: a gateway reports the whole
task object on status change, so its ``id`` is read.
"""

from __future__ import annotations

from typing import Any, ClassVar

from videopoll.errors import (
    PermanentError,
    RateLimitedError,
    TaskNotFoundError,
    VideopollError,
)
from videopoll.models import ErrorCode, GenerationSpec, ProviderResponse
from videopoll.normalizers import LAST_RESORT, Normalizer
from videopoll.providers.base import ModelInfo
from videopoll.providers.fields import as_dict, as_str, as_text, http_urls
from videopoll.providers.http import Stage
from videopoll.providers.rest import RestProvider, TaskStateNormalizer, classify_text, segment
from videopoll.ratelimit import Limit

BASE_URL = "https://ark.ap-southeast.bytepluses.com/api/v3"
# Ark's public error-code page as cited by several codebases ([3P], §9.2): all HTTP 429.
RATE_CODES = frozenset({"QuotaExceeded", "ServerOverloaded", "ModelAccountRpmRateLimitExceeded"})


def _seedance(name: str, provider_model: str, alias: bool = True,
              provider_ids: dict[str, str] | None = None) -> ModelInfo:
    # Seedance renders 5 or 10 s clips in the documented examples; the ratio list is the
    # one the Seedance pages share ("adaptive" is left out: it needs an image).
    return ModelInfo(name=name, family="ark", durations=(5, 10),
                     aspect_ratios=("16:9", "9:16", "1:1", "4:3", "3:4", "21:9"), max_images=1,
                     default_duration=5, provider_model=provider_model, alias=alias,
                     provider_ids=provider_ids or {})


def error_fields(body: Any) -> tuple[str, str]:
    """(code, message) of an Ark ``error`` object, or of the older SDK's ``failure_reason``
    (seen as an object of the same shape or as a bare message)."""
    if not isinstance(body, dict):
        return "", ""
    error = as_dict(body.get("error")) or as_dict(body.get("failure_reason"))
    message = as_text(error.get("message")) or as_text(
        body.get("failure_reason") if isinstance(body.get("failure_reason"), str) else None)
    return as_str(error.get("code")), message


def classify_code(code: str, message: str) -> ErrorCode:
    """Taxonomy code of a failed task from its ``error.code`` (then its wording)."""
    if "SensitiveContentDetected" in code:
        return ErrorCode.MODERATION_REJECTED
    if code.startswith("RateLimitExceeded") or code in RATE_CODES:
        return ErrorCode.PROVIDER_RATE_LIMITED
    default = (ErrorCode.VALIDATION_FAILED if code.startswith("InvalidParameter")
               else ErrorCode.UNKNOWN_PROVIDER_ERROR)
    return classify_text(f"{code} {message}", default)


class ArkTaskNormalizer(TaskStateNormalizer):
    """The content generation task: ``status`` with ``content.video_url`` (the output)."""

    name = "ark_task"
    QUEUED = frozenset({"queued"})
    RUNNING = frozenset({"running"})
    SUCCEEDED = frozenset({"succeeded"})
    FAILED = frozenset({"failed"})
    CANCELED = frozenset({"cancelled", "canceled"})
    # "Task timed out" before it ran (execution_expires_after, default 48 h)
    EXPIRED = frozenset({"expired"})

    def urls(self, task: dict[str, Any]) -> list[str]:
        return http_urls(as_dict(task.get("content")).get("video_url"))

    def failure(self, task: dict[str, Any]) -> tuple[ErrorCode, str]:
        code, message = error_fields(task)
        text = f"{code}: {message}" if code and message else code or message
        return classify_code(code, message), text or "the task failed"


class ArkProvider(RestProvider):
    family = "ark"
    config_name = "ark"
    default_base_url = BASE_URL
    models = (
        _seedance("seedance-1.0-pro", "seedance-1-0-pro-250528"),
        # [UNCONFIRMED] Seedance 1.0 Lite has separate text- and image-to-video ids; these
        # follow the dated naming of the Pro id.
        _seedance("seedance-1.0-lite", "seedance-1-0-lite-t2v-250428",
                  provider_ids={"text": "seedance-1-0-lite-t2v-250428",
                                "image": "seedance-1-0-lite-i2v-250428"}),
        # KIE Market owns the bare name seedance-2: this one is ark:seedance-2.
        _seedance("seedance-2", "doubao-seedance-2-0-260128", alias=False),
    )
    rate_account = "ark"
    # Ark limits RPM per endpoint and allows 120 queued tasks per account (§9.2); the RPM
    # figures are not in providers.md, so: 1 create/s with a burst of 10, 5 reads/s.
    status_limit = Limit(rate=5.0, burst=10)
    submit_limit = Limit(rate=1.0, burst=10)
    can_cancel = True
    chain: ClassVar[tuple[Normalizer, ...]] = (ArkTaskNormalizer(), *LAST_RESORT)
    callback_ids = (("id",), ("task_id",), ("data", "id"))

    def submit(self, model: ModelInfo, spec: GenerationSpec, callback_url: str | None) -> str:
        kind = "image" if spec.image_urls else "text"
        content: list[dict[str, Any]] = [{"type": "text", "text": spec.prompt}]
        if spec.image_urls:
            content.append({"type": "image_url", "image_url": {"url": spec.image_urls[0]},
                            "role": "first_frame"})
        body: dict[str, Any] = {
            "model": model.provider_ids.get(kind, model.remote_id),
            "content": content,
            "ratio": spec.aspect_ratio,
            "duration": spec.duration_seconds,
            "resolution": "720p",
        }
        if callback_url:
            body["callback_url"] = callback_url
        return self.accepted(self.request("POST", "/contents/generations/tasks", json=body,
                                          creates_task=True), "id")

    def fetch(self, task_id: str, variant: str | None = None) -> ProviderResponse:
        return self.request("GET", f"/contents/generations/tasks/{segment(task_id)}")

    def cancel(self, task_id: str) -> bool:
        """Cancels a queued task; a running one cannot be stopped (the provider says no)."""
        return self.ask_cancel(f"/contents/generations/tasks/{segment(task_id)}")

    def error_text(self, body: Any) -> str:
        code, message = error_fields(body)
        return f"{code}: {message}" if code and message else code or message

    def body_error(self, resp: ProviderResponse, stage: Stage) -> VideopollError | None:
        """What an HTTP error's ``error.code`` means, where it says more than the status."""
        if resp.http_status < 400:
            return None  # a failed *task* is a 200 with its error inside: the chain reads it
        code, _ = error_fields(resp.body)
        text = self.error_text(resp.body)
        if "SensitiveContentDetected" in code:
            return PermanentError(ErrorCode.MODERATION_REJECTED, text)
        if code.startswith("RateLimitExceeded") or code in RATE_CODES:
            return RateLimitedError(f"provider busy ({code})", resp.retry_after)
        if code == "AuthenticationError":
            return PermanentError(ErrorCode.PROVIDER_AUTH_FAILED, text)
        if code == "AccountOverdueError":
            return PermanentError(ErrorCode.INSUFFICIENT_CREDITS, text)
        if code == "ModelNotOpen":  # the account has not activated the model: fix the account
            return PermanentError(ErrorCode.PROVIDER_AUTH_FAILED, text)
        if stage == "status" and "NotFound" in code:
            return TaskNotFoundError(f"task not found ({code})", resp.text_sample)
        return None


__all__ = ["ArkProvider", "ArkTaskNormalizer"]
