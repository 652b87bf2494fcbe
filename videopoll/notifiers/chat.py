"""Team channels: Slack and Discord incoming webhooks (one URL each, from settings).

The payloads and their limits (escaping, mentions, Discord's ``?wait=true`` message id) live
in ``videopoll.chat_webhooks``; these channels only say what happened to which job.
"""

from __future__ import annotations

from videopoll.chat_webhooks import send_discord, send_slack
from videopoll.models import JobRecord
from videopoll.notifiers.base import FINAL_EVENTS, Notice, Notifier


def _line(job: JobRecord, notice: Notice) -> str:
    parts = [f"{notice.text} ({job.model}, {job.job_id})"]
    if notice.caption:
        parts.append(notice.caption)
    return "\n".join(parts)


class _IncomingWebhook(Notifier):
    """A team channel's incoming-webhook URL; the operator configured it (may be internal)."""

    events = FINAL_EVENTS

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        self.timeout = timeout


class SlackNotifier(_IncomingWebhook):
    name = "slack"

    def send(self, job: JobRecord, notice: Notice) -> str:
        send_slack(self.url, _line(job, notice), notice.link, timeout=self.timeout)
        return f"slack:{job.job_id}.{notice.event}"


class DiscordNotifier(_IncomingWebhook):
    name = "discord"

    def send(self, job: JobRecord, notice: Notice) -> str:
        sent = send_discord(self.url, _line(job, notice), notice.link, title=notice.text,
                            description=notice.caption or job.model, timeout=self.timeout)
        return f"discord:{sent or f'{job.job_id}.{notice.event}'}"
