"""MiniMax Hailuo: ``POST /v1/video_generation``, ``GET /v1/query/video_generation`` (§9.3).

Two things set MiniMax apart from the other REST families:

- Errors come with **HTTP 200** and a non-zero ``base_resp.status_code`` ([3P]: 1002 rate
  limit, 1004 auth, 1008 balance, 1026 input / 1027 output sensitive content, 2013 invalid
  parameters), so the body is judged before the HTTP status, at submit too: a non-zero code
  there proves no task was created.
- The output is two calls away: a ``Success`` query names a ``file_id``, and
  ``GET /v1/files/retrieve?file_id=…`` gives ``file.download_url``. ``fetch`` makes both calls
  and returns the query body with the retrieved ``file`` merged in, so the chain reads one
  shape.

Callbacks: MiniMax first POSTs ``{"challenge": …}`` to the ``callback_url`` and wants it echoed
back, then POSTs status updates naming ``task_id`` (shapes [UNCONFIRMED]). The base URL is the
global one; mainland China is ``https://api.minimaxi.com`` (``MINIMAX_BASE_URL``).
"""

from __future__ import annotations

import json
from typing import Any

from videopoll.errors import (
    PermanentError,
    RateLimitedError,
    TaskNotFoundError,
    TransientError,
    VideopollError,
)
from videopoll.models import ErrorCode, GenerationSpec, ProviderResponse
from videopoll.normalizers import LAST_RESORT
from videopoll.providers.base import CallbackOutcome, CallbackRequest, ModelInfo
from videopoll.providers.fields import as_dict, as_int, as_str, as_text, dig, http_urls
from videopoll.providers.http import Stage
from videopoll.providers.rest import RestProvider, TaskStateNormalizer, classify_text
from videopoll.ratelimit import Limit

BASE_URL = "https://api.minimax.io"
RATE_LIMITED, AUTH, BALANCE, INPUT_SENSITIVE, OUTPUT_SENSITIVE, BAD_PARAMS = (
    1002, 1004, 1008, 1026, 1027, 2013)
MODERATION_CODES = frozenset({INPUT_SENSITIVE, OUTPUT_SENSITIVE})
# 1000 unknown error, 1001 request timeout, 1013 internal service error: MiniMax's general
# code table ([3P], not in providers.md). At submit they still prove no task was created.
SERVER_CODES = frozenset({1000, 1001, 1013})


def _hailuo(name: str, provider_model: str) -> ModelInfo:
    # 6 or 10 s at 768P (1080P is 6 s only, so it is not offered); Hailuo takes no aspect
    # ratio (16:9 out), one first-frame image.
    return ModelInfo(name=name, family="minimax", durations=(6, 10), aspect_ratios=("16:9",),
                     max_images=1, default_duration=6, provider_model=provider_model)


def base_resp(body: Any) -> tuple[int, str]:
    """(status_code, status_msg) of ``base_resp``; code 0 when there is none."""
    resp = as_dict(dig(body, "base_resp"))
    return as_int(resp.get("status_code")) or 0, as_text(resp.get("status_msg"))


def classify_code(code: int, message: str) -> ErrorCode:
    if code in MODERATION_CODES:
        return ErrorCode.MODERATION_REJECTED
    if code == RATE_LIMITED:
        return ErrorCode.PROVIDER_RATE_LIMITED
    return classify_text(message, ErrorCode.VALIDATION_FAILED if code == BAD_PARAMS
                         else ErrorCode.UNKNOWN_PROVIDER_ERROR)


class MiniMaxQueryNormalizer(TaskStateNormalizer):
    """The query answer: ``status`` Preparing/Queueing/Processing/Success/Fail, with the
    retrieved ``file.download_url`` merged in by ``fetch``. A moderation code in
    ``base_resp`` fails the task whatever its status says."""

    name = "minimax_query"
    QUEUED = frozenset({"preparing", "queueing"})
    RUNNING = frozenset({"processing"})
    SUCCEEDED = frozenset({"success"})
    FAILED = frozenset({"fail", "failed"})

    def task(self, body: Any) -> dict[str, Any] | None:
        if not isinstance(body, dict) or not ("task_id" in body or "base_resp" in body):
            return None
        return body

    def urls(self, task: dict[str, Any]) -> list[str]:
        return http_urls(as_dict(task.get("file")).get("download_url"))

    def failed(self, task: dict[str, Any]) -> bool:
        return base_resp(task)[0] in MODERATION_CODES

    def failure(self, task: dict[str, Any]) -> tuple[ErrorCode, str]:
        code, message = base_resp(task)
        return classify_code(code, message), f"{code or ''} {message}".strip() or "the task failed"


class MiniMaxProvider(RestProvider):
    family = "minimax"
    config_name = "minimax"
    default_base_url = BASE_URL
    models = (_hailuo("hailuo-02", "MiniMax-Hailuo-02"),
              _hailuo("hailuo-2.3", "MiniMax-Hailuo-2.3"))
    rate_account = "minimax"
    # Video RPM is per account tier and not in providers.md: a conservative 1 create per 3 s
    # and 2 reads per second (a success costs two reads: query and files/retrieve).
    status_limit = Limit(rate=2.0, burst=5)
    submit_limit = Limit(rate=1 / 3, burst=5)
    chain = (MiniMaxQueryNormalizer(), *LAST_RESORT)
    callback_ids = (("task_id",), ("data", "task_id"))

    def submit(self, model: ModelInfo, spec: GenerationSpec, callback_url: str | None) -> str:
        body: dict[str, Any] = {
            "model": model.remote_id,
            "prompt": spec.prompt,
            "duration": spec.duration_seconds,
            "resolution": "768P",
        }
        if spec.image_urls:
            body["first_frame_image"] = spec.image_urls[0]
        if callback_url:
            body["callback_url"] = callback_url
        return self.accepted(self.request("POST", "/v1/video_generation", json=body,
                                          creates_task=True), "task_id")

    def fetch(self, task_id: str, variant: str | None = None) -> ProviderResponse:
        resp = self.request("GET", "/v1/query/video_generation", params={"task_id": task_id})
        body = resp.body
        file_id = dig(body, "file_id")
        done = as_str(dig(body, "status")).lower() == "success"
        if resp.http_status != 200 or not done or file_id in (None, "") or base_resp(body)[0]:
            return resp
        found = self.request("GET", "/v1/files/retrieve", params={"file_id": file_id})
        if found.http_status != 200 or not isinstance(found.body, dict):
            return found  # judged as usual: a fault of the retrieve call, not of the task
        merged = {**body, "file": found.body.get("file")}
        if base_resp(found.body)[0]:  # the retrieve call refused (rate limit, auth)
            merged["base_resp"] = found.body.get("base_resp")
        return resp.model_copy(update={"body": merged, "text_sample": json.dumps(merged)[:500]})

    def error_text(self, body: Any) -> str:
        return base_resp(body)[1]

    def body_error(self, resp: ProviderResponse, stage: Stage) -> VideopollError | None:
        code, message = base_resp(resp.body)
        if code == 0:
            return None
        text = f"{code} {message}".strip()
        if code == RATE_LIMITED:
            return RateLimitedError(f"provider rate limit ({text})", resp.retry_after)
        if code == AUTH:
            return PermanentError(ErrorCode.PROVIDER_AUTH_FAILED, text)
        if code == BALANCE:
            return PermanentError(ErrorCode.INSUFFICIENT_CREDITS, text)
        if stage == "submit":
            if code in SERVER_CODES:
                # refused with HTTP 200: no task; behind a 5xx it proves nothing (http_error)
                return (TransientError(f"submit refused ({text})", resp.text_sample)
                        if resp.http_status == 200 else None)
            return PermanentError(classify_code(code, message), text)
        if code in MODERATION_CODES or as_str(dig(resp.body, "status")).lower() == "fail":
            return None  # a verdict on the task: the chain reads it
        if code == BAD_PARAMS:
            # the query's one parameter is the task id: MiniMax does not know it [UNCONFIRMED]
            return TaskNotFoundError(f"task not found ({text})", resp.text_sample)
        return TransientError(f"provider error ({text})", resp.text_sample)

    def callback(self, req: CallbackRequest) -> CallbackOutcome:
        """Echo the verification ``challenge``; otherwise wake the task the update names."""
        challenge = dig(req.body, "challenge")
        if isinstance(challenge, str) and challenge:
            return CallbackOutcome(reply={"challenge": challenge})
        return super().callback(req)


__all__ = ["MiniMaxProvider", "MiniMaxQueryNormalizer"]
