"""Kling (official API): text2video and image2video tasks, JWT auth (providers.md §9.4).

Auth is a short-lived JWT (HS256) signed with the account's secret key, ``iss`` = access
key, ``exp`` = now + 30 min, ``nbf`` = now - 5 s, sent as Bearer: ``KLING_ACCESS_KEY`` and
``KLING_SECRET_KEY``. It is built per request with ``hmac`` (``hs256_token``), so no JWT
library is needed and a token never outlives its window.

Every answer is ``{"code", "message", "request_id", "data"}``; ``code`` 0 is success and any
other code is an error whatever the HTTP status (codes from a copy of the official docs,
[UNCONFIRMED] in providers.md: 1000-1004 auth, 1101/1102 arrears or no resource pack (HTTP
429, but not a rate limit), 1300/1301 content policy, 1302/1303 rate and concurrency limits).

Task ids: image-to-video tasks are read at ``/v1/videos/image2video/{id}``, text-to-video at
``/v1/videos/text2video/{id}`` (the one query providers.md documents). The id we keep says
which: a text task keeps Kling's id, an image task is ``image2video/<id>``. ``fetch`` falls
back to the text2video query when the image2video one does not know the task. Callbacks POST
the task object with no endpoint in it, so submit sets ``external_task_id`` to a marked value
(``vp-i2v-…``) and ``callback`` rebuilds the id from it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any, ClassVar

from pydantic import SecretStr

from videopoll.errors import (
    PermanentError,
    RateLimitedError,
    SubmitOutcomeUnknownError,
    TaskNotFoundError,
    TransientError,
    VideopollError,
)
from videopoll.models import ErrorCode, GenerationSpec, ProviderResponse
from videopoll.normalizers import LAST_RESORT, Normalizer
from videopoll.providers.base import CallbackOutcome, CallbackRequest, ModelInfo, ProviderConfig
from videopoll.providers.fields import as_dict, as_int, as_list, as_str, as_text, dig, http_urls
from videopoll.providers.http import Stage, callback_task
from videopoll.providers.rest import RestProvider, TaskStateNormalizer, classify_text, segment
from videopoll.ratelimit import Limit

BASE_URL = "https://api.klingai.com"
IMAGE = "image2video/"
IMAGE_MARK = "vp-i2v-"
TOKEN_SECONDS = 1800
AUTH_CODES = frozenset({1000, 1001, 1002, 1003, 1004, 1100, 1103, 1304})
CREDIT_CODES = frozenset({1101, 1102})
MODERATION_CODES = frozenset({1300, 1301})
RATE_CODES = frozenset({1302, 1303})
NOT_FOUND_CODES = frozenset({1202, 1203})


def _kling(name: str, provider_model: str, min_images: int = 0) -> ModelInfo:
    # image2video takes a start frame and (pro mode) an end frame, ``image`` / ``image_tail``
    return ModelInfo(name=name, family="kling", durations=(5, 10),
                     aspect_ratios=("16:9", "9:16", "1:1"), max_images=2, default_duration=5,
                     provider_model=provider_model, min_images=min_images)


class KlingConfig(ProviderConfig):
    """KLING_BASE_URL, KLING_ACCESS_KEY and KLING_SECRET_KEY (the JWT's key pair)."""

    base_url: str = BASE_URL
    access_key: str = ""
    secret_key: SecretStr | None = None


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_token(claims: dict[str, Any], secret: str) -> str:
    """A compact JWS (RFC 7515) over ``claims``, HMAC-SHA256 with ``secret``."""
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    signed = f"{header}.{payload}"
    signature = hmac.new(secret.encode(), signed.encode(), hashlib.sha256).digest()
    return f"{signed}.{_b64url(signature)}"


def hs256_claims(token: str, secret: str) -> dict[str, Any] | None:
    """The claims of an HS256 token whose signature ``secret`` verifies; ``None`` otherwise."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    expected = hmac.new(secret.encode(), f"{parts[0]}.{parts[1]}".encode(),
                        hashlib.sha256).digest()
    try:
        header = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
        given = base64.urlsafe_b64decode(parts[2] + "=" * (-len(parts[2]) % 4))
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, TypeError):
        return None
    if as_dict(header).get("alg") != "HS256" or not hmac.compare_digest(expected, given):
        return None
    return claims if isinstance(claims, dict) else None


def kling_error(code: int | None, message: str, stage: Stage,
                resp: ProviderResponse) -> VideopollError:
    """The fault a non-zero Kling ``code`` (or an unreadable one) means at ``stage``."""
    text = f"{code} {message}".strip()
    if code in AUTH_CODES:
        return PermanentError(ErrorCode.PROVIDER_AUTH_FAILED, text)
    if code in CREDIT_CODES:
        return PermanentError(ErrorCode.INSUFFICIENT_CREDITS, text)
    if code in MODERATION_CODES:
        return PermanentError(ErrorCode.MODERATION_REJECTED, text)
    if code in RATE_CODES:
        return RateLimitedError(f"provider rate limit ({text})", resp.retry_after)
    if stage == "status":
        if code in NOT_FOUND_CODES or resp.http_status == 404:
            return TaskNotFoundError(f"task not found ({text})", resp.text_sample)
        return TransientError(f"provider error ({text})", resp.text_sample)
    if code in (1200, 1201, *NOT_FOUND_CODES):  # bad parameters, no such model
        return PermanentError(ErrorCode.VALIDATION_FAILED, text)
    if 400 <= resp.http_status < 500 and resp.http_status not in (408, 429):
        return PermanentError(ErrorCode.UNKNOWN_PROVIDER_ERROR, text)
    # 5000-5002 (server error, unavailable, timeout) and unknown codes: maybe created
    return SubmitOutcomeUnknownError(f"submit answered {resp.http_status} ({text})",
                                     resp.text_sample)


class KlingTaskNormalizer(TaskStateNormalizer):
    """The task: ``task_status`` submitted/processing/succeed/failed, the video at
    ``task_result.videos[0].url``; inside the envelope's ``data`` or bare (callbacks)."""

    name = "kling_task"
    state_field = "task_status"
    QUEUED = frozenset({"submitted"})
    RUNNING = frozenset({"processing"})
    SUCCEEDED = frozenset({"succeed", "succeeded"})
    FAILED = frozenset({"failed"})

    def task(self, body: Any) -> dict[str, Any] | None:
        data = dig(body, "data")
        if isinstance(data, dict) and "task_status" in data:
            return data
        return body if isinstance(body, dict) and "task_status" in body else None

    def urls(self, task: dict[str, Any]) -> list[str]:
        videos = as_list(as_dict(task.get("task_result")).get("videos"))
        return [url for video in videos for url in http_urls(as_dict(video).get("url"))][:1]

    def failure(self, task: dict[str, Any]) -> tuple[ErrorCode, str]:
        message = as_text(task.get("task_status_msg")) or "the task failed"
        return classify_text(message), message


class KlingProvider(RestProvider):
    family = "kling"
    config_name = "kling"
    config_class: ClassVar[type[ProviderConfig]] = KlingConfig
    default_base_url = BASE_URL
    models = (_kling("kling-2.6", "kling-v2-6"),
              # kling-v2-1 is image-to-video only (the official capability map, [3P])
              _kling("kling-2.1", "kling-v2-1", min_images=1))
    rate_account = "kling"
    # Kling limits concurrency per resource pack (1303 when over) and documents no request
    # rates: a conservative 1 create per 5 s and 2 reads per second.
    status_limit = Limit(rate=2.0, burst=5)
    submit_limit = Limit(rate=0.2, burst=3)
    chain: ClassVar[tuple[Normalizer, ...]] = (KlingTaskNormalizer(), *LAST_RESORT)

    def auth_headers(self) -> dict[str, str]:
        access = getattr(self.config, "access_key", "")
        secret = self.config.secret("secret_key")
        if isinstance(access, str) and access and secret:
            now = int(time.time())
            claims = {"iss": access, "exp": now + TOKEN_SECONDS, "nbf": now - 5}
            return {"Authorization": f"Bearer {hs256_token(claims, secret)}"}
        # a ready-made token (a gateway that speaks Kling's API)
        return super().auth_headers()

    def submit(self, model: ModelInfo, spec: GenerationSpec, callback_url: str | None) -> str:
        images = spec.image_urls[:2]
        body: dict[str, Any] = {
            "model_name": model.remote_id,
            "prompt": spec.prompt,
            "duration": str(spec.duration_seconds),  # a string enum, "5" or "10"
            "mode": "pro" if len(images) == 2 else "std",  # start+end frames need pro
            "external_task_id": f"{IMAGE_MARK if images else 'vp-t2v-'}{uuid.uuid4().hex}",
        }
        if images:
            body["image"] = images[0]
            if len(images) == 2:
                body["image_tail"] = images[1]
        else:
            body["aspect_ratio"] = spec.aspect_ratio  # image2video follows the image
        if callback_url:
            body["callback_url"] = callback_url
        path = "/v1/videos/image2video" if images else "/v1/videos/text2video"
        task_id = self.accepted(self.request("POST", path, json=body, creates_task=True),
                                "data", "task_id")
        return f"{IMAGE}{task_id}" if images else task_id

    def fetch(self, task_id: str, variant: str | None = None) -> ProviderResponse:
        if not task_id.startswith(IMAGE):
            return self.request("GET", f"/v1/videos/text2video/{segment(task_id)}")
        raw = task_id[len(IMAGE):]
        resp = self.request("GET", f"/v1/videos/image2video/{segment(raw)}")
        code = as_int(dig(resp.body, "code"))
        if resp.http_status == 404 or code in NOT_FOUND_CODES:
            return self.request("GET", f"/v1/videos/text2video/{segment(raw)}")
        return resp

    def error_text(self, body: Any) -> str:
        return as_text(dig(body, "message"))

    def body_error(self, resp: ProviderResponse, stage: Stage) -> VideopollError | None:
        if not isinstance(resp.body, dict) or "code" not in resp.body:
            return None  # not Kling's envelope: the HTTP status decides
        code = as_int(resp.body.get("code"))
        if code == 0:
            return None
        return kling_error(code, self.error_text(resp.body), stage, resp)

    def callback(self, req: CallbackRequest) -> CallbackOutcome:
        """The task a callback names (bare task object or inside ``data``), as submit
        returned it: ``image2video/<id>`` when our ``external_task_id`` marks an image task."""
        task = as_dict(dig(req.body, "data")) or as_dict(req.body)
        task_id = callback_task(task.get("task_id"))
        external = as_str(dig(task, "task_info", "external_task_id"))
        return CallbackOutcome(task_id=f"{IMAGE}{task_id}" if external.startswith(IMAGE_MARK)
                               else task_id)


__all__ = ["KlingConfig", "KlingProvider", "KlingTaskNormalizer", "hs256_claims", "hs256_token"]
