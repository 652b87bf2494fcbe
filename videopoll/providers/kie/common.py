"""What the KIE.ai families share: the envelope, one table of codes, and the failure texts.

KIE answers HTTP 200 with the real status in the body ``code`` (providers.md §1.1), so every
answer is judged on its HTTP status and then its body code, by the one table in ``error_for``.
A code means different things at the two stages:

- ``status`` (record-info / recordInfo): 404 and "record is null" mean the provider does not
  know the task — brand new, or expired (``TaskNotFoundError``: the poller gives a short grace);
  "supports records within 14 days" means it is gone for good.
- ``submit`` (generate / createTask): what matters is whether the provider may have accepted —
  and billed — the task. Only answers that prove it did not are retried (429, 455) or failed
  (400, 401, 402, 404, 422, 451, 501, 505). A 5xx, a 408 or anything unexpected is
  ``SubmitOutcomeUnknownError``: the job must not resubmit blindly (invariant 9).

| code      | status                                     | submit                          |
|-----------|--------------------------------------------|---------------------------------|
| 400       | permanent, by text (else validation_failed) | same                           |
| 401, 403  | permanent provider_auth_failed             | same                            |
| 402       | permanent insufficient_credits             | same                            |
| 404       | TaskNotFoundError                          | permanent validation_failed     |
| 408       | transient (upstream stalled; deadline)     | outcome unknown                 |
| 422       | by text, see ``_status_422``               | permanent, by text              |
| 429, 455  | RateLimitedError                           | RateLimitedError (not queued)   |
| 451       | permanent asset_fetch_failed               | same                            |
| 500       | transient                                  | outcome unknown                 |
| 501       | permanent (generation failed), by text     | same                            |
| 505       | permanent unknown_provider_error (disabled) | same                           |
| other 4xx | transient                                  | permanent unknown_provider_error |
| other     | transient                                  | outcome unknown                 |

"By text" is ``classify_failure``: moderation, then asset fetch, then timeout wording.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from typing import Any

from pydantic import SecretStr

from videopoll.errors import (
    CallbackRejected,
    PermanentError,
    RateLimitedError,
    SubmitOutcomeUnknownError,
    TaskNotFoundError,
    TransientError,
    VideopollError,
)
from videopoll.models import ErrorCode, ProviderResponse
from videopoll.providers.base import CallbackOutcome, CallbackRequest, ProviderConfig
from videopoll.providers.fields import as_int, as_text
from videopoll.providers.http import Stage, callback_task, task_id_from

BASE_URL = "https://api.kie.ai"

# Veo and Market draw on one KIE account and one API key, so they share rate-limit buckets
# (providers.md §1.9: limits are "applied per account").
KIE_ACCOUNT = "kie"

_MODERATION = re.compile(
    r"flagged|content polic|prohibited|sensitive|unsafe|nsfw|moderat|inappropriate|"
    r"violat|rejected by flow",
    re.IGNORECASE,
)
_ASSET = re.compile(r"fetch the image|media file is unavailable|image.*(not|un)available",
                    re.IGNORECASE)
_TIMEOUT = re.compile(r"time ?out|timed out", re.IGNORECASE)
_CAPACITY = re.compile(r"limit for concurrent|concurrent generations", re.IGNORECASE)
_NOT_FOUND = re.compile(r"\brecord(info)? is null|task not found", re.IGNORECASE)
_EXPIRED = re.compile(r"records within \d+ days", re.IGNORECASE)
RESULT_BLANK = re.compile(r"record result data (is blank|is empty|not exist)", re.IGNORECASE)


def is_moderation(text: str) -> bool:
    return bool(_MODERATION.search(text or ""))


def is_asset_failure(text: str) -> bool:
    return bool(_ASSET.search(text or ""))


def envelope(body: Any) -> tuple[int | None, str, Any]:
    """(code, message, data) of a KIE envelope; code ``None`` when the body is not one."""
    if not isinstance(body, dict):
        return None, "", None
    code = as_int(body.get("code"))
    if code is None:
        return None, "", None
    message = as_text(body.get("msg") or body.get("message"))
    return code, message, body.get("data")


def classify_failure(code: int | None, message: str) -> ErrorCode:
    """Taxonomy code of a failed task (Veo ``errorCode``, Market ``failCode``, plus text).

    Text comes first: KIE has no dedicated moderation code (400 and 422 cover both validation
    and content policy, providers.md §2.2). 500 is the provider's own timeout or internal
    error ("Internal Error - Timeout", "Internal Error, Please try again later.").
    """
    if is_moderation(message):
        return ErrorCode.MODERATION_REJECTED
    if is_asset_failure(message):
        return ErrorCode.ASSET_FETCH_FAILED
    if _CAPACITY.search(message):  # KIE Runway: "Reached the limit for concurrent generations."
        return ErrorCode.PROVIDER_RATE_LIMITED
    if code == 500 or _TIMEOUT.search(message):
        return ErrorCode.PROVIDER_TIMEOUT
    if code in (400, 422):
        return ErrorCode.VALIDATION_FAILED
    return ErrorCode.UNKNOWN_PROVIDER_ERROR


def error_for(
    code: int, message: str, stage: Stage, retry_after: float | None = None, sample: str = ""
) -> VideopollError:
    """The exception a non-200 KIE code (HTTP status or body ``code``) means at ``stage``."""
    if code in (401, 403):
        return PermanentError(ErrorCode.PROVIDER_AUTH_FAILED, message)
    if code == 402:
        return PermanentError(ErrorCode.INSUFFICIENT_CREDITS, message)
    if code in (429, 455):
        return RateLimitedError(f"provider busy ({code}): {message}", retry_after)
    if code == 451:
        return PermanentError(ErrorCode.ASSET_FETCH_FAILED, message)
    if code == 400 and _CAPACITY.search(message):  # capacity: retry with backoff (§10.2)
        return RateLimitedError(f"provider at its concurrency limit ({code}): {message}",
                                retry_after)
    if code in (400, 501, 505):
        return PermanentError(classify_failure(code, message), message)
    if stage == "status":
        return _status_error(code, message, sample)
    if 400 <= code < 500 and code != 408:  # rejected before any task was created
        return PermanentError(classify_failure(400 if code == 404 else code, message), message)
    return SubmitOutcomeUnknownError(f"submit answered {code}: {message}", sample)


def _status_error(code: int, message: str, sample: str) -> VideopollError:
    if code == 404:
        return TaskNotFoundError(f"task not found ({code}): {message}", sample)
    if code == 422:
        return _status_422(message, sample)
    return TransientError(f"provider error {code}: {message}", sample)


def _status_422(message: str, sample: str) -> VideopollError:
    """record-info 422 texts (providers.md §1.3): unknown task, expired task, or other."""
    if _NOT_FOUND.search(message):
        return TaskNotFoundError(f"task not found (422): {message}", sample)
    if _EXPIRED.search(message):
        return PermanentError(ErrorCode.TASK_NOT_FOUND,
                              f"task record expired (KIE keeps 14 days): {message}")
    if is_moderation(message) or is_asset_failure(message):
        return PermanentError(classify_failure(422, message), message)
    # "record status is not success." and undocumented texts: poll on, the deadline ends it.
    return TransientError(f"record not available (422): {message}", sample)


def raise_for_submit(resp: ProviderResponse) -> str:
    """The task id of an accepted submit, or the exception that says what happened instead."""
    code, message, data = envelope(resp.body)
    if resp.http_status != 200:
        raise error_for(resp.http_status, message, "submit", resp.retry_after, resp.text_sample)
    if code is None:
        raise SubmitOutcomeUnknownError("submit answer is not a KIE envelope", resp.text_sample)
    if code != 200:
        raise error_for(code, message, "submit", resp.retry_after, resp.text_sample)
    # Accepted (code 200) but with no usable id: a task may exist that we cannot poll.
    return task_id_from(data.get("taskId") if isinstance(data, dict) else None,
                        resp.text_sample)


class KieConfig(ProviderConfig):
    """KIE_BASE_URL, KIE_API_KEY and KIE_WEBHOOK_HMAC_KEY (the account's ``webhookHmacKey``)."""

    base_url: str = BASE_URL
    webhook_hmac_key: SecretStr | None = None


def verify_callback(req: CallbackRequest, key: str | None, max_age: float) -> CallbackOutcome:
    """The task a KIE callback is about, verified when a webhook HMAC key is configured.

    KIE signs ``taskId + "." + timestamp`` (not the body) with the account's key, as
    ``X-Webhook-Signature: base64(HMAC-SHA256)`` beside ``X-Webhook-Timestamp`` (providers.md
    §1.5): a valid signature proves only which task to look at, so the body is never trusted
    and the status endpoint decides. Veo, Market and Runway use ``taskId``; the 4K and Runway
    callbacks use snake_case ``task_id``.
    """
    data = req.body.get("data") if isinstance(req.body, dict) else None
    task = callback_task((data.get("taskId") or data.get("task_id"))
                         if isinstance(data, dict) else None)
    if key is None:
        return CallbackOutcome(task_id=task)
    stamp, signature = req.header("x-webhook-timestamp"), req.header("x-webhook-signature")
    if not stamp or not signature:
        raise CallbackRejected(401, "missing X-Webhook-Timestamp or X-Webhook-Signature")
    try:
        sent_at = float(stamp)
    except ValueError:
        raise CallbackRejected(401, "X-Webhook-Timestamp is not a number") from None
    if not abs(req.now - sent_at) <= max_age:
        raise CallbackRejected(401, "the callback's timestamp is too old (or in the future)")
    if not hmac.compare_digest(sign_callback(key, task, stamp), signature.strip()):
        raise CallbackRejected(401, "bad X-Webhook-Signature")
    return CallbackOutcome(task_id=task)


def sign_callback(key: str, task_id: str, timestamp: str) -> str:
    """KIE's signature (the fake provider signs with it too)."""
    return base64.b64encode(
        hmac.new(key.encode(), f"{task_id}.{timestamp}".encode(), hashlib.sha256).digest()
    ).decode()
