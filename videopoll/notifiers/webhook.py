"""The caller's ``callbackUrl``: the final job, signed per the Standard Webhooks spec.

This is how an n8n workflow resumes (its Wait node's resume URL is the ``callbackUrl``). The
sending itself (signing, safe URLs, no redirects, error classes) is ``videopoll.webhooks``;
this channel decides when to call and what to say.
"""

from __future__ import annotations

from videopoll.models import JobRecord
from videopoll.notifiers.base import FINAL_EVENTS, Notice, Notifier
from videopoll.webhooks import build_payload, message_id, send_callback


class WebhookNotifier(Notifier):
    name = "webhook"
    events = FINAL_EVENTS  # a "delayed" call would resume an n8n Wait node too early

    def __init__(self, secret: str | None, timeout: float, allow_private: bool,
                 require_signature: bool = False) -> None:
        self.secret = secret
        self.timeout = timeout
        self.allow_private = allow_private
        self.require_signature = require_signature

    def skip_reason(self, job: JobRecord, notice: Notice) -> str | None:
        if not job.callback_url:
            return "no callbackUrl"
        return super().skip_reason(job, notice)

    def send(self, job: JobRecord, notice: Notice) -> str:
        assert job.callback_url
        msg_id = message_id(job.job_id, notice.event)
        status = send_callback(job.callback_url, notice.event,
                               build_payload(notice.view, notice.event), self.secret,
                               self.timeout, self.allow_private, msg_id=msg_id,
                               require_signature=self.require_signature)
        return f"{msg_id}:{status}"
