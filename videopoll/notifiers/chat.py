"""Team channels: Slack and Discord incoming webhooks (one URL each, from settings)."""

from __future__ import annotations

from typing import Any

from videopoll.models import JobRecord
from videopoll.notifiers.base import FINAL_EVENTS, Notice, Notifier
from videopoll.notifiers.webhook import post_json


def _line(job: JobRecord, notice: Notice) -> str:
    parts = [f"{notice.text} ({job.model}, {job.job_id})"]
    if notice.caption:
        parts.append(notice.caption)
    if notice.link:
        parts.append(notice.link)
    return "\n".join(parts)


class _IncomingWebhook(Notifier):
    """A team channel's incoming-webhook URL; subclasses shape the payload."""

    events = FINAL_EVENTS

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        self.timeout = timeout

    def payload(self, job: JobRecord, notice: Notice) -> dict[str, Any]:
        raise NotImplementedError

    def send(self, job: JobRecord, notice: Notice) -> str:
        receipt = f"{job.job_id}.{notice.event}"
        # the operator configured this URL: it may be an internal relay
        post_json(self.url, self.payload(job, notice), msg_id=receipt, secret=None,
                  timeout=self.timeout, allow_private=True)
        return f"{self.name}:{receipt}"


class SlackNotifier(_IncomingWebhook):
    name = "slack"

    def payload(self, job: JobRecord, notice: Notice) -> dict[str, Any]:
        text = _line(job, notice)
        return {"text": text,
                "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}


class DiscordNotifier(_IncomingWebhook):
    name = "discord"

    def payload(self, job: JobRecord, notice: Notice) -> dict[str, Any]:
        embed = {"title": notice.text, "description": notice.caption or job.model}
        if notice.link:
            embed["url"] = notice.link
        return {"content": _line(job, notice)[:2000], "embeds": [embed]}
