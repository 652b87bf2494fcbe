"""The user's Telegram chat, through pyTelegramBotAPI against ``TELEGRAM_API_URL``.

On success the video itself is uploaded (streamed from storage) with a caption and buttons,
up to the Bot API's 50 MB limit for bot uploads; a larger video goes as a link. Failures
are told in one message from the user-facing table. Errors map to what delivery can act on:
429 waits ``retry_after``, 403 (the user blocked the bot) and 400 stop for this chat and are
recorded, 5xx and network faults are retried.
"""

from __future__ import annotations

from typing import Any

import requests
import telebot
from telebot import apihelper
from telebot.types import InlineKeyboardButton, InlineKeyboardMarkup

from videopoll.errors import NotifyError
from videopoll.models import JobRecord
from videopoll.notifiers.base import Notice, Notifier

UPLOAD_TIMEOUT_SECONDS = 120


class TelegramNotifier(Notifier):
    name = "telegram"

    def __init__(self, token: str, api_url: str, upload_max_bytes: int) -> None:
        # pyTelegramBotAPI reads its endpoint from a module global: one Bot API per process.
        apihelper.API_URL = api_url.rstrip("/") + "/bot{0}/{1}"  # type: ignore[assignment]
        apihelper.FILE_URL = api_url.rstrip("/") + "/file/bot{0}/{1}"  # type: ignore[assignment]
        self.bot = telebot.TeleBot(token, threaded=False)
        self.upload_max_bytes = upload_max_bytes

    def skip_reason(self, job: JobRecord, notice: Notice) -> str | None:
        if notice.chat_id is None:
            return notice.chat_reason or "no chat id"
        return super().skip_reason(job, notice)

    def send(self, job: JobRecord, notice: Notice) -> str:
        assert notice.chat_id is not None
        try:
            return str(self._send(notice).message_id)
        except apihelper.ApiTelegramException as exc:
            raise _error(exc.error_code, exc.description, exc.result_json) from exc
        except apihelper.ApiHTTPException as exc:
            status = getattr(exc.result, "status_code", 500)
            raise NotifyError(f"telegram HTTP {status}", permanent=400 <= status < 500
                              and status not in (408, 429)) from exc
        except (requests.RequestException, OSError) as exc:
            raise NotifyError(f"telegram unreachable: {type(exc).__name__}") from exc

    def _send(self, notice: Notice) -> Any:
        chat, markup = notice.chat_id, _keyboard(notice)
        assert chat is not None
        if notice.progress_message_id is not None:
            # the job's one progress message says how it ended (or that it is delayed)
            self.edit(chat, notice.progress_message_id, notice.text)
            if notice.event == "delayed":
                return _Receipt(notice.progress_message_id)
        if notice.event == "succeeded" and notice.video is not None:
            if notice.video.size_bytes <= self.upload_max_bytes:
                with notice.video.open() as video:
                    return self.bot.send_video(chat, video, caption=notice.caption[:1024],
                                               reply_markup=markup, supports_streaming=True,
                                               timeout=UPLOAD_TIMEOUT_SECONDS)
            text = f"{notice.caption}\n{notice.link}" if notice.link else notice.caption
            return self.bot.send_message(chat, text, reply_markup=markup)
        return self.bot.send_message(chat, notice.text)

    def edit(self, chat_id: str | int, message_id: int, text: str) -> None:
        """Replace a progress message in place (one message per job, not a stream)."""
        try:
            self.bot.edit_message_text(text, chat_id, message_id)
        except apihelper.ApiTelegramException as exc:
            if "not modified" not in str(exc.description):
                raise

    def start_progress(self, chat_id: str | int, text: str) -> int:
        message_id: int = self.bot.send_message(chat_id, text).message_id
        return message_id


class _Receipt:
    def __init__(self, message_id: int) -> None:
        self.message_id = message_id


def _keyboard(notice: Notice) -> InlineKeyboardMarkup | None:
    if not notice.buttons:
        return None
    job_id = str(notice.view.get("jobId", ""))
    markup = InlineKeyboardMarkup()
    markup.row(*[InlineKeyboardButton(b.text, callback_data=b.data(job_id))
                 for b in notice.buttons])
    return markup


def _error(code: int, description: str, body: dict[str, Any] | None) -> NotifyError:
    if code == 429:
        params = (body or {}).get("parameters") or {}
        retry = params.get("retry_after") if isinstance(params, dict) else None
        return NotifyError(f"telegram 429: {description}",
                           retry_after=float(retry) if isinstance(retry, int | float) else None)
    permanent = 400 <= code < 500
    return NotifyError(f"telegram {code}: {description}", permanent=permanent)
