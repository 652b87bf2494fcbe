"""Signed callbacks to the caller's ``callbackUrl``, per the Standard Webhooks spec.

This is how an n8n workflow resumes: its Wait node's resume URL is the ``callbackUrl``. One
call makes one attempt; retrying with backoff is the caller's (the Celery task's) job, told
by the error what is worth another try (``retry_delay`` says when):

    NotifyError (videopoll.errors)
    └── WebhookError       ``status`` (0: no answer), ``permanent``, ``retry_after``

- 2xx: done. 3xx: permanent (redirects are never followed: the target could be private).
- 4xx: permanent, except 408 and 429. 5xx, 408, 429, timeouts, refused connections:
  retryable, after ``Retry-After`` when the receiver sent one.

The ``webhook-id`` is stable per job and event (``message_id``), so a receiver recognises a
resend as a duplicate; the signature and ``webhook-timestamp`` are made at each attempt, so a
resend is never rejected as stale. With ``CALLBACK_SECRET`` set every call is signed (several
secrets, space-separated, sign once each for rotation); without it calls go unsigned unless
``CALLBACK_REQUIRE_SIGNATURE`` refuses them. Error reasons never hold the URL: resume URLs and
chat webhook URLs carry their own credentials (invariant 7).
"""

from __future__ import annotations

import binascii
import datetime as dt
import email.utils
import json
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests
from standardwebhooks import Webhook

from videopoll.download import check_url, safe_session
from videopoll.errors import DeliveryError, NotifyError

MAX_ANSWER_BYTES = 64 * 1024  # a receiver's answer is read this far and no further
MAX_RETRY_AFTER_SECONDS = 3600.0
EVENT_TYPES = {"succeeded": "video.succeeded", "failed": "video.failed",
               "canceled": "video.canceled", "button": "video.button"}


class WebhookError(NotifyError):
    """A webhook POST failed; ``status`` is the HTTP answer, 0 when there was none."""

    def __init__(self, reason: str, status: int = 0, permanent: bool = False,
                 retry_after: float | None = None) -> None:
        super().__init__(reason, permanent, retry_after)
        self.args = (reason, status, permanent, retry_after)
        self.status = status


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]  # case-insensitive (requests' own mapping)
    body: bytes  # at most MAX_ANSWER_BYTES


def message_id(job_id: str, event: str, *detail: str) -> str:
    """The ``webhook-id`` of one event of one job: the same for every resend of it."""
    return ".".join((job_id, event, *detail))


def build_payload(job_view: dict[str, Any], event: str) -> dict[str, Any]:
    """The Standard Webhooks envelope around the public job view."""
    if event not in EVENT_TYPES:
        raise ValueError(f"no webhook event {event!r}; one of {sorted(EVENT_TYPES)}")
    now = dt.datetime.now(tz=dt.UTC).isoformat(timespec="milliseconds")
    return {"type": EVENT_TYPES[event], "timestamp": now.replace("+00:00", "Z"),
            "data": job_view}


def send_callback(url: str, event: str, payload: dict[str, Any], secret: str | None,
                  timeout: float, allow_private: bool, *, msg_id: str | None = None,
                  require_signature: bool = False) -> int:
    """POST ``payload`` to ``url`` once, signed when ``secret`` is set; the HTTP status."""
    if msg_id is None:
        data = payload.get("data")
        job_id = data.get("jobId") if isinstance(data, dict) else None
        if not isinstance(job_id, str):
            raise ValueError("payload has no data.jobId: pass msg_id")
        msg_id = message_id(job_id, event)
    if not secret and require_signature:
        raise WebhookError("CALLBACK_REQUIRE_SIGNATURE is on but CALLBACK_SECRET is unset",
                           permanent=True)
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    headers = {"Content-Type": "application/json", "webhook-id": msg_id,
               **signature_headers(secret, msg_id, body)}
    answer = post(url, body.encode(), headers, timeout=timeout, allow_private=allow_private,
                  what="callback")
    if answer.status >= 300:
        raise refusal("callback", answer, retry_after_header(answer.headers))
    return answer.status


def signature_headers(secret: str | None, msg_id: str, body: str) -> dict[str, str]:
    """``webhook-timestamp`` and ``webhook-signature`` for now; nothing without a secret."""
    if not secret:
        return {}
    now = dt.datetime.now(tz=dt.UTC)
    try:
        signatures = [Webhook(s).sign(msg_id, now, body) for s in secret.split()]
    except (binascii.Error, ValueError, RuntimeError) as exc:
        # the message names the fault, never the secret
        raise WebhookError("CALLBACK_SECRET is not a whsec_ base64 secret",
                           permanent=True) from exc
    return {"webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": " ".join(signatures)}


def post(url: str, body: bytes, headers: dict[str, str], *, timeout: float,
         allow_private: bool, what: str) -> Answer:
    """One POST to a URL somebody gave us: checked, never redirected; any answer returned."""
    try:
        check_url(url, allow_private)
    except DeliveryError as exc:
        raise WebhookError(f"{what}: {exc.reason}", permanent=exc.permanent) from exc
    try:
        with safe_session(allow_private) as http, http.post(
            url, data=body, timeout=(min(timeout, 10.0), timeout), allow_redirects=False,
            stream=True, headers={"User-Agent": "videopoll", **headers},
        ) as resp:
            raw = resp.raw.read(MAX_ANSWER_BYTES, decode_content=True) or b""
            return Answer(resp.status_code, resp.headers, raw)
    except DeliveryError as exc:  # the connection reached a private peer (rebinding)
        raise WebhookError(f"{what}: {exc.reason}", permanent=exc.permanent) from exc
    except (requests.RequestException, OSError) as exc:
        if isinstance(exc.__context__, DeliveryError):
            inner = exc.__context__
            raise WebhookError(f"{what}: {inner.reason}", permanent=inner.permanent) from exc
        raise WebhookError(f"{what} unreachable: {type(exc).__name__}") from exc


def refusal(what: str, answer: Answer, retry_after: float | None) -> WebhookError:
    """The error for a non-2xx answer: permanent unless another try could succeed."""
    status = answer.status
    permanent = status < 500 and status not in (408, 429)
    reason = f"{what} answered HTTP {status}"
    if 300 <= status < 400:
        reason += " (redirects are not followed)"
    return WebhookError(reason, status=status, permanent=permanent,
                        retry_after=None if permanent else retry_after)


def retry_after_header(headers: Mapping[str, str]) -> float | None:
    """``Retry-After`` in seconds (delta or HTTP date), within an hour; ``None`` if unusable."""
    value = (headers.get("Retry-After") or "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        seconds = (when - dt.datetime.now(tz=dt.UTC)).total_seconds()
    return bounded_seconds(seconds)


def retry_delay(retries: int, retry_after: float | None = None, base: float = 2.0,
                cap: float = 120.0) -> float:
    """Seconds before retry number ``retries + 1``: exponential with jitter, never sooner
    than the receiver asked. The jitter spreads retries of many jobs that failed together
    (a receiver back from an outage) instead of sending them all in the same second."""
    ceiling = min(cap, base * 2.0 ** min(retries, 32))
    return max(ceiling / 2 + random.uniform(0, ceiling / 2), retry_after or 0.0)


def bounded_seconds(seconds: float) -> float | None:
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)
