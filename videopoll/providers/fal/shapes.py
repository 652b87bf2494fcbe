"""fal's answer shapes: the queue status (with the result ``fetch`` merged in) and the webhook.

``result_fault`` comes first: what the merged result says about our *call* rather than the
request (bad key, rate limit, an answer that is not a JSON object, a 5xx with no typed error)
is a fault the poller acts on, not a verdict. Then ``CHAIN``: the webhook body (``status``
OK/ERROR beside ``request_id``) before the queue status (``status`` IN_QUEUE/IN_PROGRESS/
COMPLETED); their vocabularies do not overlap, the webhook is simply the narrower shape.
``LAST_RESORT`` rescues a completed result whose video sits under a model-specific key.

How a finished request failed (providers.md §7, §10.2), from the result body:

| result                                                  | error_code             |
|---------------------------------------------------------|------------------------|
| ``detail[].type`` content_policy_violation (HTTP 422)   | moderation_rejected    |
| ``detail[].type`` ``*_download_error``/``*_load_error`` | asset_fetch_failed     |
| ``detail[].type`` ``*timeout*``                         | provider_timeout       |
| ``detail[].type`` internal_server_error, downstream_*   | unknown_provider_error |
| any other ``detail[].type`` (input validation)          | validation_failed      |
| ``error_type`` request/startup/runner_connection timeout | provider_timeout      |
| ``error_type`` runner_scheduling_failure (503)          | provider_rate_limited  |
| any other ``error_type`` (runner_disconnected, …)       | unknown_provider_error |
| ``detail`` text saying the request was cancelled        | canceled               |

``runner_*`` and timeouts are final when we see them: the queue itself retries 503, 504 and
connection errors up to 10 times before it marks the request COMPLETED with the error, so the
transient phase is over and every later poll answers the same. ``provider_timeout`` lets the
poller resubmit once, which is safe here because fal does not bill 5xx failures (§7).
"""

from __future__ import annotations

import re
from typing import Any

from videopoll.errors import TransientError, VideopollError
from videopoll.models import ErrorCode, PollResult, PollState, ProviderResponse
from videopoll.normalizers import LAST_RESORT, Normalizer, warn_unknown
from videopoll.providers.fields import as_dict, as_int, as_list, as_str, as_text, dig, http_urls
from videopoll.providers.http import http_error

_CANCELED = re.compile(r"cancel", re.IGNORECASE)
_TIMEOUT = re.compile(r"time[sd]? ?out", re.IGNORECASE)
_TIMEOUT_TYPES = frozenset({"request_timeout", "startup_timeout", "runner_connection_timeout"})
_SERVER_TYPES = frozenset({"internal_server_error", "downstream_service_error",
                           "downstream_service_unavailable"})
# Where video models put the file: ``video.url`` mostly, ``videos[0].url`` for multi-output
# models, a bare ``video`` string in a few [3P]; the last resort digs anywhere else.
_VIDEO_PATHS: tuple[tuple[str | int, ...], ...] = (("video", "url"), ("videos", 0, "url"),
                                                    ("video",))


def video_urls(result: Any) -> list[str]:
    for path in _VIDEO_PATHS:
        if urls := http_urls(dig(result, *path)):
            return urls
    return []


def failure_of(body: Any) -> tuple[ErrorCode, str] | None:
    """(code, message) of a typed fal error body; ``None`` when it carries no known error."""
    if not isinstance(body, dict):
        return None
    entries = [e for e in as_list(body.get("detail")) if isinstance(e, dict)]
    if entries:
        types = {as_str(e.get("type")) for e in entries}
        message = "; ".join(f"{as_str(e.get('type'))}: {as_text(e.get('msg'))}" for e in entries)
        return _by_types(types), as_text(message)
    detail = body.get("detail")
    text = as_text(detail if isinstance(detail, str) else body.get("error"))
    error_type = as_str(body.get("error_type"))
    if error_type:
        return _by_error_type(error_type), as_text(f"{error_type}: {text}")
    if _CANCELED.search(text):
        return ErrorCode.CANCELED, text
    if _TIMEOUT.search(text):
        return ErrorCode.PROVIDER_TIMEOUT, text
    return None


def _by_types(types: set[str]) -> ErrorCode:
    if "content_policy_violation" in types:
        return ErrorCode.MODERATION_REJECTED
    if any(t.endswith(("_download_error", "_load_error")) for t in types):
        return ErrorCode.ASSET_FETCH_FAILED
    if any("timeout" in t for t in types):
        return ErrorCode.PROVIDER_TIMEOUT
    if types & _SERVER_TYPES:
        return ErrorCode.UNKNOWN_PROVIDER_ERROR
    return ErrorCode.VALIDATION_FAILED


def _by_error_type(error_type: str) -> ErrorCode:
    if error_type in _TIMEOUT_TYPES or error_type.endswith("_timeout"):
        return ErrorCode.PROVIDER_TIMEOUT
    if error_type == "runner_scheduling_failure":  # no machine to run it on: capacity
        return ErrorCode.PROVIDER_RATE_LIMITED
    return ErrorCode.UNKNOWN_PROVIDER_ERROR


def result_fault(resp: ProviderResponse) -> VideopollError | None:
    """A fault of the result call merged into a COMPLETED status, or ``None`` (a verdict)."""
    body = resp.body
    if not isinstance(body, dict) or body.get("status") != "COMPLETED":
        return None
    result = as_dict(body.get("result"))
    status = as_int(result.get("http_status"))
    if status is None:
        return None
    text = as_text(result.get("text"))
    if status in (401, 403, 429):
        return http_error(resp.model_copy(update={"http_status": status, "text_sample": text}),
                          "status")
    if not isinstance(result.get("body"), dict):
        return TransientError(f"fal result answered {status} without a JSON object", text)
    if status >= 500 and failure_of(result["body"]) is None:
        return TransientError(f"fal result answered {status} without a typed error", text)
    return None


class FalWebhookNormalizer(Normalizer):
    """A webhook body: ``{"request_id", "status": "OK"|"ERROR", "payload", "error"}``."""

    name = "fal_webhook"

    def parse(self, body: Any) -> PollResult | None:
        if (not isinstance(body, dict) or "request_id" not in body
                or body.get("status") not in ("OK", "ERROR")):
            return None
        if body["status"] == "OK":
            return self.result(PollState.SUCCEEDED, output_urls=video_urls(body.get("payload")))
        code, text = (failure_of(body.get("payload")) or failure_of({"error": body.get("error")})
                      or (ErrorCode.UNKNOWN_PROVIDER_ERROR, ""))
        return self.result(PollState.FAILED, error_code=code,
                           provider_message=as_text(body.get("error")) or text)


class FalQueueStatusNormalizer(Normalizer):
    """Queue status IN_QUEUE / IN_PROGRESS / COMPLETED, with the merged ``result``."""

    name = "fal_queue_status"

    def parse(self, body: Any) -> PollResult | None:
        status = body.get("status") if isinstance(body, dict) else None
        if not isinstance(status, str):
            return None
        if status == "IN_QUEUE":
            return self.result(PollState.QUEUED)
        if status == "IN_PROGRESS":
            return self.result(PollState.RUNNING)
        if status == "COMPLETED":
            return self._completed(body)
        warn_unknown(self.name, "status", status)
        return self.result(PollState.RUNNING)

    def _completed(self, body: dict[str, Any]) -> PollResult:
        result = as_dict(body.get("result"))
        status = as_int(result.get("http_status"))
        if status is None:
            # A status answer on its own; newer ones may carry error fields [UNCONFIRMED]
            found = failure_of(body)
            if found is not None:
                return self.result(PollState.FAILED, error_code=found[0],
                                   provider_message=found[1])
            return self.result(PollState.SUCCEEDED)  # no URL: the last resort may find one
        if status == 200:
            return self.result(PollState.SUCCEEDED, output_urls=video_urls(result.get("body")),
                               progress=100)
        fallback = (ErrorCode.VALIDATION_FAILED if status in (400, 422)
                    else ErrorCode.UNKNOWN_PROVIDER_ERROR)
        code, message = failure_of(result.get("body")) or (
            fallback, as_text(dig(result, "body", "detail")) or f"HTTP {status}")
        return self.result(PollState.FAILED, error_code=code, provider_message=message)


CHAIN: tuple[Normalizer, ...] = (FalWebhookNormalizer(), FalQueueStatusNormalizer(),
                                 *LAST_RESORT)
