"""What the KIE.ai families share: the ``{"code", "msg", "data"}`` envelope and error texts.

KIE answers HTTP 200 with the real status in the body ``code`` (providers.md §1.1), so every
KIE response is judged on both the HTTP status and the body code.
"""

from __future__ import annotations

import re
from typing import Any

from videopoll.errors import PermanentError, RateLimitedError, TransientError
from videopoll.models import ErrorCode, ProviderResponse

_MODERATION = re.compile(
    r"flagged|content polic|prohibited|sensitive|unsafe|nsfw|moderat|inappropriate|"
    r"violat|rejected by flow",
    re.IGNORECASE,
)
_ASSET = re.compile(r"fetch the image|media file is unavailable|image.*(not|un)available",
                    re.IGNORECASE)


def is_moderation(text: str) -> bool:
    return bool(_MODERATION.search(text or ""))


def is_asset_failure(text: str) -> bool:
    return bool(_ASSET.search(text or ""))


def envelope(body: Any) -> tuple[int | None, str, Any]:
    """(code, message, data) of a KIE envelope; code ``None`` when the body is not one."""
    if not isinstance(body, dict) or "code" not in body:
        return None, "", None
    try:
        code = int(body["code"])
    except (TypeError, ValueError):
        return None, "", None
    message = str(body.get("msg") or body.get("message") or "")
    return code, message, body.get("data")


def raise_for_code(code: int, message: str, retry_after: float | None, sample: str) -> None:
    """Translate a non-200 KIE code (HTTP or body) into the exception the caller acts on."""
    if code in (401, 403):
        raise PermanentError(ErrorCode.PROVIDER_AUTH_FAILED, message)
    if code == 402:
        raise PermanentError(ErrorCode.INSUFFICIENT_CREDITS, message)
    if code in (429, 455):
        raise RateLimitedError(f"provider busy ({code}): {message}", retry_after)
    if code == 451 or is_asset_failure(message):
        raise PermanentError(ErrorCode.ASSET_FETCH_FAILED, message)
    if code in (400, 422, 501, 505) and is_moderation(message):
        raise PermanentError(ErrorCode.MODERATION_REJECTED, message)
    if code >= 500 or code == 408:
        raise TransientError(f"provider error {code}: {message}", sample)


def raise_for_submit(resp: ProviderResponse) -> dict[str, Any]:
    """``data`` of a successful submit, or the exception that says what to do instead."""
    code, message, data = envelope(resp.body)
    if resp.http_status != 200:
        raise_for_code(resp.http_status, message, resp.retry_after, resp.text_sample)
        raise PermanentError(ErrorCode.VALIDATION_FAILED, message or f"HTTP {resp.http_status}")
    if code is None:
        raise TransientError("submit answer is not a KIE envelope", resp.text_sample)
    if code != 200:
        raise_for_code(code, message, resp.retry_after, resp.text_sample)
        raise PermanentError(ErrorCode.VALIDATION_FAILED, message)
    if not isinstance(data, dict) or not data.get("taskId"):
        raise TransientError("submit succeeded without a taskId", resp.text_sample)
    return data
