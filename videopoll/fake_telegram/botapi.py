"""What the fake Bot API answers: the real one's results, errors and limits, plus scripts.

Kept apart from the HTTP plumbing so the rules read as a table. Each method checks what the
real Bot API checks before it answers (a missing ``chat_id``, an empty text, a caption over
1024 characters, ``callback_data`` over 64 bytes, an upload over 50 MB, editing a message
that does not exist or to the same text), so a client bug fails here as it would in
production. Scripted answers are consulted first: a test says "the next sendVideo to chat 7
answers 429", or "chat 8 has blocked the bot" (``forever``), and the fake plays it.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

UPLOAD_MAX_BYTES = 50 * 1024 * 1024  # the Bot API's limit for files bots upload
CAPTION_MAX = 1024
TEXT_MAX = 4096
CALLBACK_DATA_MAX = 64

DESCRIPTIONS = {
    400: "Bad Request: chat not found",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    413: "Request Entity Too Large",
    429: "Too Many Requests: retry after {retry_after}",
    500: "Internal Server Error",
    502: "Bad Gateway",
}
SENDS = ("sendMessage", "sendVideo", "editMessageText")
METHODS = (*SENDS, "getMe", "answerCallbackQuery", "deleteMessage", "setWebhook",
           "deleteWebhook")


class BotApiError(Exception):
    """An answer of ``{"ok": false}``: what the real Bot API says when it refuses a call."""

    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(code, description, retry_after)
        self.code = code
        self.description = description
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ok": False, "error_code": self.code,
                               "description": self.description}
        if self.retry_after is not None:
            out["parameters"] = {"retry_after": self.retry_after}
        return out


def scripted_error(answer: dict[str, Any]) -> BotApiError:
    code = int(answer["error_code"])
    retry = int(answer.get("retry_after", 1)) if code == 429 else None
    description = answer.get("description") or DESCRIPTIONS.get(code, "Error").format(
        retry_after=retry)
    return BotApiError(code, str(description), retry)


class BotState:
    """Calls, scripts and sent messages, shared by the handler threads."""

    def __init__(self, upload_max_bytes: int = UPLOAD_MAX_BYTES) -> None:
        self.lock = threading.Lock()
        self.upload_max_bytes = upload_max_bytes
        self.calls: list[dict[str, Any]] = []
        # (method or "*", chat id or None) -> answers still to play, in order
        self.scripts: dict[tuple[str, str | None], list[dict[str, Any]]] = {}
        self.texts: dict[tuple[str, int], str] = {}  # what each sent message says now
        self.next_message_id = 1000

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()
            self.scripts.clear()
            self.texts.clear()

    def add_script(self, method: str, answers: list[dict[str, Any]],
                   chat_id: str | int | None = None) -> None:
        key = (method or "*", None if chat_id is None else str(chat_id))
        with self.lock:
            self.scripts.setdefault(key, []).extend(answers)

    def calls_of(self, method: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(c) for c in self.calls if method in (None, c["method"])]

    def handle(self, token: str, method: str, fields: dict[str, Any]) -> tuple[int, Any]:
        """Record the call and answer it: ``(HTTP status, JSON body)``."""
        chat = None if fields.get("chat_id") is None else str(fields["chat_id"])
        call = {"method": method, "token_tail": token[-4:], "at": time.time(), **fields}
        try:
            with self.lock:
                answer = self._scripted(method, chat)
            if answer is not None and answer.get("error_code"):
                raise scripted_error(answer)
            result = self._answer(method, chat, fields)
        except BotApiError as exc:
            call["answered"] = exc.code
            self._record(call)
            return exc.code, exc.body()
        call["answered"] = 200
        self._record(call)
        return 200, {"ok": True, "result": result}

    def _record(self, call: dict[str, Any]) -> None:
        with self.lock:
            self.calls.append(call)

    def _scripted(self, method: str, chat: str | None) -> dict[str, Any] | None:
        for key in ((method, chat), ("*", chat), (method, None), ("*", None)):
            queue = self.scripts.get(key)
            if queue:
                return queue[0] if queue[0].get("forever") else queue.pop(0)
        return None

    def _answer(self, method: str, chat: str | None, fields: dict[str, Any]) -> Any:
        if method not in METHODS:
            raise BotApiError(404, "Not Found")
        if method == "getMe":
            return {"id": 1, "is_bot": True, "first_name": "videopoll", "username": "fake_bot",
                    "can_join_groups": True, "can_read_all_group_messages": False,
                    "supports_inline_queries": False}
        if method not in SENDS:
            return True
        if chat is None:
            raise BotApiError(400, "Bad Request: chat_id is empty")
        _check_markup(fields.get("reply_markup"))
        if method == "sendVideo":
            return self._send_video(chat, fields)
        text = str(fields.get("text") or "")
        if not text.strip():
            raise BotApiError(400, "Bad Request: message text is empty")
        if len(text) > TEXT_MAX:
            raise BotApiError(400, "Bad Request: message is too long")
        if method == "editMessageText":
            return self._edit(chat, fields.get("message_id"), text)
        return self._message(chat, text=text)

    def _send_video(self, chat: str, fields: dict[str, Any]) -> dict[str, Any]:
        video = fields.get("video")
        if isinstance(video, dict):  # an uploaded file (its size, not its bytes)
            if int(video["file_size"]) > self.upload_max_bytes:
                raise BotApiError(413, "Request Entity Too Large")
            size = int(video["file_size"])
        elif isinstance(video, str) and video:
            size = 0  # a URL or file_id: Telegram would fetch it
        else:
            raise BotApiError(400, "Bad Request: there is no video in the request")
        caption = str(fields.get("caption") or "")
        if len(caption) > CAPTION_MAX:
            raise BotApiError(400, "Bad Request: message caption is too long")
        message = self._message(chat, caption=caption) if caption else self._message(chat)
        message["video"] = {"file_id": f"fake-video-{message['message_id']}",
                            "file_unique_id": f"u{message['message_id']}", "width": 0,
                            "height": 0, "duration": 0, "file_size": size}
        return message

    def _edit(self, chat: str, raw_id: Any, text: str) -> dict[str, Any]:
        try:
            key = (chat, int(raw_id))
        except (TypeError, ValueError):
            raise BotApiError(400, "Bad Request: message to edit not found") from None
        with self.lock:
            current = self.texts.get(key)
            if current is None:
                raise BotApiError(400, "Bad Request: message to edit not found")
            if current == text:
                raise BotApiError(400, "Bad Request: message is not modified: specified new "
                                  "message content and reply markup are exactly the same as "
                                  "a current content and reply markup of the message")
            self.texts[key] = text
        return {"message_id": key[1], "date": int(time.time()), "edit_date": int(time.time()),
                "chat": _chat(chat), "text": text}

    def _message(self, chat: str, **content: str) -> dict[str, Any]:
        """A new message; what it says is kept, so an edit can be checked against it."""
        with self.lock:
            self.next_message_id += 1
            message_id = self.next_message_id
            self.texts[(chat, message_id)] = next(iter(content.values()), "")
        return {"message_id": message_id, "date": int(time.time()), "chat": _chat(chat),
                **content}


def _check_markup(raw: Any) -> None:
    if raw is None:
        return
    try:
        markup = json.loads(raw) if isinstance(raw, str) else raw
        rows = markup.get("inline_keyboard", [])
        buttons = [b for row in rows for b in row]
    except (ValueError, AttributeError, TypeError):
        raise BotApiError(
            400, "Bad Request: can't parse reply keyboard markup JSON object") from None
    for button in buttons:
        data = button.get("callback_data") if isinstance(button, dict) else None
        if data is not None and len(str(data).encode()) > CALLBACK_DATA_MAX:
            raise BotApiError(400, "Bad Request: BUTTON_DATA_INVALID")


def _chat(chat: str) -> dict[str, Any]:
    if chat.lstrip("-").isdigit():
        return {"id": int(chat), "type": "private" if not chat.startswith("-") else "group",
                "first_name": "Fake"}
    return {"id": chat, "type": "channel", "title": "Fake"}  # "@channel" addresses
