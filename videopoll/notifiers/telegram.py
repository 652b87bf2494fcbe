"""The user's Telegram chat: a ``Notice`` said through ``videopoll.telegram.TelegramClient``.

On success the video itself is uploaded (streamed from storage) with a caption and buttons;
over the bots' upload limit it goes as a link. Failures are one message from the user-facing
table. The client raises ``NotifyError`` subclasses already: 429 waits ``retry_after``, 403
and 400 stop for this chat and are recorded, 5xx and network faults are retried.
"""

from __future__ import annotations

from videopoll.models import JobRecord
from videopoll.notifiers.base import Notice, Notifier
from videopoll.telegram import TelegramClient


class TelegramNotifier(Notifier):
    name = "telegram"

    def __init__(self, token: str, api_url: str, upload_max_bytes: int) -> None:
        self.client = TelegramClient(token, api_url, upload_max_bytes)

    def skip_reason(self, job: JobRecord, notice: Notice) -> str | None:
        if notice.chat_id is None:
            return notice.chat_reason or "no chat id"
        return super().skip_reason(job, notice)

    def send(self, job: JobRecord, notice: Notice) -> str:
        chat = notice.chat_id
        assert chat is not None
        if notice.progress_message_id is not None:
            # the job's one progress message says how it ended (or that it is delayed)
            self.client.edit_text(chat, notice.progress_message_id, notice.text)
            if notice.event == "delayed":
                return str(notice.progress_message_id)
        if notice.event == "succeeded" and notice.video is not None:
            buttons = [(b.text, b.data(job.job_id)) for b in notice.buttons]
            return str(self.client.send_video(chat, notice.caption, notice.video, buttons,
                                              link=notice.link))
        return str(self.client.send_text(chat, notice.text))

    def edit(self, chat_id: str | int, message_id: int, text: str) -> None:
        """Replace a progress message in place (one message per job, not a stream)."""
        self.client.edit_text(chat_id, message_id, text)

    def start_progress(self, chat_id: str | int, text: str) -> int:
        return self.client.send_text(chat_id, text)
