"""The caller's ``callbackUrl``: the final job, signed per the Standard Webhooks spec.

This is how an n8n workflow resumes (its Wait node's resume URL is the ``callbackUrl``). The
``webhook-id`` is stable per job and event, so a receiver can drop a retried duplicate;
redirects are not followed and the target must be a public address (invariant 8).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import requests
from standardwebhooks import Webhook

from videopoll.download import check_url, safe_session
from videopoll.errors import DeliveryError, NotifyError
from videopoll.models import JobRecord
from videopoll.notifiers.base import FINAL_EVENTS, Event, Notice, Notifier


def signed_headers(secret: str | None, msg_id: str, body: str) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "User-Agent": "videopoll"}
    if secret:
        now = dt.datetime.now(tz=dt.UTC)
        headers.update({
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(secret).sign(msg_id, now, body),
        })
    return headers


def post_json(url: str, payload: dict[str, Any], *, msg_id: str, secret: str | None,
              timeout: float, allow_private: bool) -> int:
    """POST ``payload`` to a URL somebody else gave us; the status, or a ``NotifyError``."""
    try:
        check_url(url, allow_private)
    except DeliveryError as exc:
        raise NotifyError(exc.reason, permanent=exc.permanent) from exc
    body = json.dumps(payload, separators=(",", ":"))
    try:
        with safe_session(allow_private) as http:
            resp = http.post(url, data=body.encode(), timeout=timeout, allow_redirects=False,
                             headers=signed_headers(secret, msg_id, body))
    except DeliveryError as exc:
        raise NotifyError(exc.reason, permanent=exc.permanent) from exc
    except requests.RequestException as exc:
        raise NotifyError(f"callback unreachable: {type(exc).__name__}") from exc
    if resp.status_code < 300:
        return resp.status_code
    retry_after = _seconds(resp.headers.get("Retry-After"))
    permanent = 300 <= resp.status_code < 500 and resp.status_code not in (408, 429)
    raise NotifyError(f"callback answered HTTP {resp.status_code}", permanent=permanent,
                      retry_after=retry_after)


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, min(float(value), 3600.0)) if value else None
    except ValueError:
        return None


class WebhookNotifier(Notifier):
    name = "webhook"
    events = FINAL_EVENTS  # a "delayed" call would resume an n8n Wait node too early

    def __init__(self, secret: str | None, timeout: float, allow_private: bool) -> None:
        self.secret = secret
        self.timeout = timeout
        self.allow_private = allow_private

    def skip_reason(self, job: JobRecord, notice: Notice) -> str | None:
        if not job.callback_url:
            return "no callbackUrl"
        return super().skip_reason(job, notice)

    def send(self, job: JobRecord, notice: Notice) -> str:
        assert job.callback_url
        msg_id = f"{job.job_id}.{notice.event}"
        status = post_json(job.callback_url, event_payload(notice.event, notice.view),
                           msg_id=msg_id, secret=self.secret, timeout=self.timeout,
                           allow_private=self.allow_private)
        return f"{msg_id}:{status}"


def event_payload(event: Event | str, view: dict[str, Any]) -> dict[str, Any]:
    return {"type": f"video.{event}", "id": str(uuid.uuid4()),
            "timestamp": dt.datetime.now(tz=dt.UTC).isoformat(timespec="seconds"),
            "data": view}
