"""Team channels: Slack and Discord incoming webhooks (one URL each, from settings)."""

from __future__ import annotations

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


class SlackNotifier(Notifier):
    name = "slack"
    events = FINAL_EVENTS

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        self.timeout = timeout

    def send(self, job: JobRecord, notice: Notice) -> str:
        text = _line(job, notice)
        payload = {"text": text,
                   "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}
        # the operator configured this URL: it may be an internal relay
        post_json(self.url, payload, msg_id=f"{job.job_id}.{notice.event}", secret=None,
                  timeout=self.timeout, allow_private=True)
        return f"slack:{job.job_id}.{notice.event}"


class DiscordNotifier(Notifier):
    name = "discord"
    events = FINAL_EVENTS

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        self.timeout = timeout

    def send(self, job: JobRecord, notice: Notice) -> str:
        embed = {"title": notice.text, "description": notice.caption or job.model}
        if notice.link:
            embed["url"] = notice.link
        payload = {"content": _line(job, notice)[:2000], "embeds": [embed]}
        post_json(self.url, payload, msg_id=f"{job.job_id}.{notice.event}", secret=None,
                  timeout=self.timeout, allow_private=True)
        return f"discord:{job.job_id}.{notice.event}"
