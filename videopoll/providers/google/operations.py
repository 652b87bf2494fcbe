"""What Google's two Veo APIs share: long-running operations, google.rpc.Status errors, images.

Both the Gemini API and Vertex AI answer a submit with an operation ``{"name": …}`` and report
it until ``done`` is true, after which exactly one of ``error`` (a google.rpc.Status
``{code, message, status}``) or ``response`` is set (providers.md §5). Proto3 JSON omits
false values, so an operation still running is often just ``{"name": …}`` without ``done``.

Errors arrive in two places and are judged by one table:

| where / status                        | submit                  | status                      |
|---------------------------------------|-------------------------|-----------------------------|
| HTTP 429 or ``RESOURCE_EXHAUSTED``    | RateLimitedError        | RateLimitedError            |
| HTTP 400 ``INVALID_ARGUMENT``         | validation_failed (1)   | transient (a call fault)    |
| HTTP 401/403, 404, 5xx, other         | ``base.http_error``     | ``base.http_error``         |
| operation ``error`` (done)            |                         | FAILED, code by ``failure`` |

(1) moderation_rejected when the text is a safety refusal or says the project needs approval
for person or child generation (§5.2). RAI filtering is not an error: the operation is done,
its response has no samples and ``raiMediaFilteredCount > 0`` / ``raiMediaFilteredReasons``
(moderation_rejected, §5.1). Images go inline (``{bytesBase64Encoded, mimeType}``): neither API
fetches an http(s) URL, so ``inline_image`` fetches it first, through the download guards.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from typing import Any

from videopoll.download import stream
from videopoll.errors import (
    DeliveryError,
    PermanentError,
    RateLimitedError,
    SubmitOutcomeUnknownError,
    TransientError,
    VideopollError,
)
from videopoll.models import ErrorCode, PollResult, PollState, ProviderResponse
from videopoll.normalizers import Normalizer, run_chain, sample_of, warn_unknown
from videopoll.providers.base import ModelInfo, ProviderConfig
from videopoll.providers.fields import as_dict, as_int, as_list, as_str, as_text
from videopoll.providers.http import Stage, http_error, task_id_from

IMAGE_MAX_BYTES = 10 * 1024 * 1024  # an inline request carries it base64-encoded (4/3 larger)

# google.rpc.Code numbers (operation errors) and HTTP numbers (HTTP error bodies) of the
# statuses we judge; the ``status`` string wins where the body has one.
_CODES = {1: "CANCELLED", 3: "INVALID_ARGUMENT", 4: "DEADLINE_EXCEEDED", 7: "PERMISSION_DENIED",
          8: "RESOURCE_EXHAUSTED", 16: "UNAUTHENTICATED", 400: "INVALID_ARGUMENT",
          401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 429: "RESOURCE_EXHAUSTED",
          499: "CANCELLED", 504: "DEADLINE_EXCEEDED"}
_FAILURES = {"CANCELLED": ErrorCode.CANCELED, "INVALID_ARGUMENT": ErrorCode.VALIDATION_FAILED,
             "DEADLINE_EXCEEDED": ErrorCode.PROVIDER_TIMEOUT,
             "RESOURCE_EXHAUSTED": ErrorCode.PROVIDER_RATE_LIMITED,
             "PERMISSION_DENIED": ErrorCode.PROVIDER_AUTH_FAILED,
             "UNAUTHENTICATED": ErrorCode.PROVIDER_AUTH_FAILED}
# Safety refusals, and the "project needs approval / allowlisting for person (or child)
# generation" errors (§5.2); the exact wording is not documented, so match loosely.
_MODERATION = re.compile(
    r"responsible ai|\brai\b|safety|usage guidelines|content polic|prohibited|sensitive|"
    r"violat|unsafe|\bfiltered\b|"
    r"(person|people|child|children|minor|face)\w*[^.]{0,80}"
    r"(approv|allowlist|not allowed|permission)|"
    r"(approv|allowlist)\w*[^.]{0,80}(person|people|child|minor)",
    re.IGNORECASE)


_BAD_KEY = re.compile(r"API_KEY_INVALID|API_KEY_EXPIRED|api key (is )?(not valid|invalid|expired)",
                      re.IGNORECASE)


def is_moderation(text: str) -> bool:
    return bool(_MODERATION.search(text or ""))


def rpc_status(value: Any) -> tuple[str, str]:
    """(STATUS name, message) of a google.rpc.Status; the name from ``code`` when absent."""
    error = as_dict(value)
    status = as_str(error.get("status")).upper()
    code = as_int(error.get("code"))
    return status or _CODES.get(code or 0, ""), as_text(error.get("message"))


def failure(status: str, message: str) -> ErrorCode:
    """The taxonomy code of a failed operation: the text first (moderation has no status)."""
    if is_moderation(message):
        return ErrorCode.MODERATION_REJECTED
    return _FAILURES.get(status, ErrorCode.UNKNOWN_PROVIDER_ERROR)


def call_error(resp: ProviderResponse, stage: Stage) -> VideopollError | None:
    """The fault a Google answer is at ``stage``, or ``None`` when it is a 2xx answer."""
    if 200 <= resp.http_status < 300:
        return None  # a done operation's own ``error`` is a verdict on the task, not a fault
    status, message = rpc_status(dig_error(resp.body))
    if status == "RESOURCE_EXHAUSTED" or resp.http_status == 429:
        return RateLimitedError(f"provider rate limit ({resp.http_status} {status}): "
                                f"{message[:200]}", resp.retry_after)
    text = f"{status}: {message}" if status and message else message or status
    if _BAD_KEY.search(message) or _BAD_KEY.search(" ".join(_reasons(dig_error(resp.body)))):
        # the Gemini API answers a wrong key with 400 INVALID_ARGUMENT (reason
        # API_KEY_INVALID), not 401 [3P]: still an auth failure, not a validation one
        return PermanentError(ErrorCode.PROVIDER_AUTH_FAILED, text)
    return http_error(resp, stage, text, moderation=is_moderation)


def _reasons(error: Any) -> list[str]:
    """``details[].reason`` of a google.rpc.Status (ErrorInfo entries)."""
    return [as_str(as_dict(d).get("reason")) for d in as_list(as_dict(error).get("details"))]


def dig_error(body: Any) -> Any:
    """The ``error`` of an HTTP error body; some proxies wrap it in a one-element list."""
    if isinstance(body, list) and len(body) == 1:
        body = body[0]
    return as_dict(body).get("error")


def submitted_operation(resp: ProviderResponse) -> str:
    """The operation name an accepted ``predictLongRunning`` answered (the task id, slashes
    and all), or the exception that says what happened instead."""
    error = call_error(resp, "submit")
    if error is not None:
        raise error
    if not isinstance(resp.body, dict):
        raise SubmitOutcomeUnknownError("submit answer is not an operation", resp.text_sample)
    return task_id_from(resp.body.get("name"), resp.text_sample)


def judge(resp: ProviderResponse, chain: Sequence[Normalizer]) -> PollResult:
    """One status answer of either API: the envelope's faults raise, the body goes to
    ``chain``."""
    error = call_error(resp, "status")
    if error is not None:
        raise error
    if resp.body is None:
        raise TransientError("response is not JSON", sample_of(resp))
    return run_chain(chain, resp.body, sample_of(resp))


class OperationNormalizer(Normalizer):
    """A google.longrunning.Operation: running until ``done``, then ``error`` or outputs.

    Subclasses say where the outputs sit: ``payload`` is the object that holds the videos and
    the RAI fields, ``outputs`` its URLs and whether it held any video at all. Only a body
    with an operation ``name`` or a ``done`` field is this shape: a KIE envelope or a bare
    ``{}`` is not.
    """

    def payload(self, response: dict[str, Any]) -> dict[str, Any]:
        return response

    def outputs(self, payload: dict[str, Any]) -> tuple[list[str], bool]:
        raise NotImplementedError

    def parse(self, body: Any) -> PollResult | None:
        if not isinstance(body, dict) or not ("done" in body or "operations/" in
                                              as_str(body.get("name"))):
            return None
        if isinstance(body.get("error"), dict):
            status, message = rpc_status(body["error"])
            return self.result(PollState.FAILED, error_code=failure(status, message),
                               provider_message=f"{status} {message}".strip())
        done = body.get("done", False)
        if done is not True:
            if done is not False:
                warn_unknown(self.name, "done", done)
            return self.result(PollState.RUNNING)
        payload = self.payload(as_dict(body.get("response")))
        urls, any_video = self.outputs(payload)
        if not any_video and (reasons := rai_filtered(payload)) is not None:
            return self.result(PollState.FAILED, error_code=ErrorCode.MODERATION_REJECTED,
                               provider_message=reasons or "filtered by Responsible AI")
        return self.result(PollState.SUCCEEDED, output_urls=urls, progress=100)


def rai_filtered(payload: dict[str, Any]) -> str | None:
    """The filter reasons (may be "") when the payload says videos were filtered, else None."""
    reasons = [as_text(r) for r in as_list(payload.get("raiMediaFilteredReasons")) if r]
    count = as_int(payload.get("raiMediaFilteredCount")) or 0
    return "; ".join(reasons)[:1000] if count > 0 or reasons else None


def veo_model(name: str, family: str) -> ModelInfo:
    """Veo 3.1 on either API: 4, 6 or 8 s, landscape or portrait, a first and a last frame."""
    return ModelInfo(name=name, family=family, durations=(4, 6, 8),
                     aspect_ratios=("16:9", "9:16"), max_images=2, default_duration=8)


class GoogleConfig(ProviderConfig):
    """Settings both Google families take besides the base URL and key."""

    # Fetch loopback/private image URLs (tests, the offline demo); off in production.
    allow_private_images: bool = False


def instance(prompt: str, image_urls: list[str], config: ProviderConfig,
             timeout: float) -> dict[str, Any]:
    """``instances[0]``: the prompt, the first image as ``image`` and a second as
    ``lastFrame`` (interpolation between the two frames, §5)."""
    allow_private = bool(getattr(config, "allow_private_images", False))
    body: dict[str, Any] = {"prompt": prompt}
    for field, url in zip(("image", "lastFrame"), image_urls, strict=False):
        body[field] = inline_image(url, timeout, allow_private)
    return body


def inline_image(url: str, timeout: float, allow_private: bool) -> dict[str, str]:
    """An image URL as ``{bytesBase64Encoded, mimeType}``, fetched before any task exists.

    A refused or missing image is ``asset_fetch_failed``; a network fault is a
    ``DeliveryError`` turned transient (nothing was sent to the provider, so a retry is safe).
    """
    try:
        data = b"".join(stream(url, IMAGE_MAX_BYTES, timeout, allow_private))
    except DeliveryError as exc:
        if exc.permanent:
            raise PermanentError(ErrorCode.ASSET_FETCH_FAILED, exc.reason) from exc
        raise TransientError(f"image fetch failed: {exc.reason}") from exc
    mime = image_mime(data)
    if mime is None:
        raise PermanentError(ErrorCode.ASSET_FETCH_FAILED, "the image is not PNG, JPEG or WebP")
    return {"bytesBase64Encoded": base64.b64encode(data).decode("ascii"), "mimeType": mime}


def image_mime(data: bytes) -> str | None:
    """The MIME type Veo takes for these bytes, by their magic number."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None
