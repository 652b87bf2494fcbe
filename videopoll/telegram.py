"""The Telegram Bot API through pyTelegramBotAPI, its errors translated at this boundary.

    NotifyError                      (videopoll.errors: permanent / retry_after)
    └── TelegramError                ``error_code`` as Telegram gave it (0: no answer)
        ├── TelegramRetryAfter       429: send again after ``retry_after`` seconds
        ├── TelegramUnavailable      5xx, network, garbled answer: retry with backoff;
        │                            ``maybe_delivered`` when the answer was lost after sending
        └── TelegramRefused          any other 4xx: this message will never be taken (permanent)
            └── TelegramBlocked      403: blocked by the user, kicked, deactivated: stop, record

Videos up to the bots' upload limit are uploaded, streamed from storage with their exact
``Content-Length``; pyTelegramBotAPI hands files to ``requests``, which reads a file whole
and copies it into the body, so a 50 MB upload would hold twice that per worker. Larger
videos go as a link. pyTelegramBotAPI keeps its endpoint and request sender in module
globals, so one Bot API (``TELEGRAM_API_URL``) serves the whole process.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import IO, Any, ClassVar, Protocol

import requests
import telebot
from telebot import apihelper
from telebot.types import InlineKeyboardButton, InlineKeyboardMarkup

from videopoll.errors import NotifyError

# The Bot API takes uploads "up to 50 MB" from bots; decimal MB stays under either reading.
UPLOAD_MAX_BYTES = 50_000_000
CAPTION_MAX = 1024
TEXT_MAX = 4096
CALLBACK_DATA_MAX = 64  # bytes
UPLOAD_TIMEOUT_SECONDS = 120
CHUNK_BYTES = 1024 * 1024

Buttons = Sequence[tuple[str, str]]  # (label, callback_data), shown as one row


class TelegramError(NotifyError):
    """A Bot API call failed; the subclass says what delivery should do about it."""

    permanent_error: ClassVar[bool] = False

    def __init__(self, reason: str, error_code: int = 0,
                 retry_after: float | None = None) -> None:
        super().__init__(reason, permanent=self.permanent_error, retry_after=retry_after)
        self.args = (reason, error_code, retry_after)
        self.error_code = error_code


class TelegramRetryAfter(TelegramError):
    """Flood control: Telegram says when to try again."""


class TelegramUnavailable(TelegramError):
    """Telegram did not answer usefully. ``maybe_delivered``: the request went out and the
    answer was lost (read timeout), so a resend may show the message twice."""

    def __init__(self, reason: str, error_code: int = 0, retry_after: float | None = None,
                 maybe_delivered: bool = False) -> None:
        super().__init__(reason, error_code, retry_after)
        self.args = (reason, error_code, retry_after, maybe_delivered)
        self.maybe_delivered = maybe_delivered


class TelegramRefused(TelegramError):
    """Telegram refused this message (bad chat, bad markup, too large): resending is useless."""

    permanent_error = True


class TelegramBlocked(TelegramRefused):
    """The user blocked the bot (or the chat is gone): nothing more goes to this chat."""


class VideoSource(Protocol):
    """A stored video: its exact size, and a way to read it (storage's ``open``)."""

    @property
    def size_bytes(self) -> int: ...

    def open(self) -> AbstractContextManager[IO[bytes]]: ...


class TelegramClient:
    """Sends, edits and answers on behalf of one bot; every failure is a ``TelegramError``."""

    def __init__(self, token: str, api_url: str = "https://api.telegram.org",
                 upload_max_bytes: int = UPLOAD_MAX_BYTES) -> None:
        base = api_url.rstrip("/")
        # telebot formats API_URL with (token, method): https://…/bot{0}/{1}
        apihelper.API_URL = base + "/bot{0}/{1}"  # type: ignore[assignment]
        apihelper.FILE_URL = base + "/file/bot{0}/{1}"  # type: ignore[assignment]
        apihelper.CUSTOM_REQUEST_SENDER = send_request  # type: ignore[assignment]
        self.bot = telebot.TeleBot(token, threaded=False)
        self.upload_max_bytes = upload_max_bytes

    def send_video(self, chat_id: int | str, caption: str, video: VideoSource | str,
                   buttons: Buttons = (), *, link: str | None = None) -> int:
        """Upload the video (or pass Telegram a URL to fetch); above the upload limit send
        ``link`` in a message instead. Returns the message id to record before anything else."""
        markup = keyboard(buttons)
        caption = caption[:CAPTION_MAX]
        if isinstance(video, str):
            return self._id(lambda: self.bot.send_video(
                chat_id, video, caption=caption, reply_markup=markup, supports_streaming=True))
        if video.size_bytes > self.upload_max_bytes:
            if not link:
                raise TelegramRefused(f"video of {video.size_bytes} bytes is over the bot "
                                      "upload limit and there is no link to send instead")
            return self.send_text(chat_id, f"{caption}\n{link}" if caption else link, buttons)

        def upload() -> Any:
            with video.open() as stream:
                return self.bot.send_video(
                    chat_id, Upload(stream, video.size_bytes), caption=caption,
                    reply_markup=markup, supports_streaming=True, timeout=UPLOAD_TIMEOUT_SECONDS)

        return self._id(upload)

    def send_text(self, chat_id: int | str, text: str, buttons: Buttons = ()) -> int:
        markup = keyboard(buttons)
        return self._id(lambda: self.bot.send_message(chat_id, text[:TEXT_MAX],
                                                      reply_markup=markup))

    def edit_text(self, chat_id: int | str, message_id: int, text: str) -> None:
        """Replace a message's text in place; the same text again is not an error."""
        try:
            self._call(lambda: self.bot.edit_message_text(text[:TEXT_MAX], chat_id, message_id))
        except TelegramRefused as exc:
            if "message is not modified" not in exc.reason:
                raise

    def answer_callback(self, query_id: str, text: str = "") -> None:
        self._call(lambda: self.bot.answer_callback_query(query_id, text or None))

    def _id(self, send: Any) -> int:
        message_id: int = self._call(send).message_id
        return message_id

    def _call(self, send: Any) -> Any:
        try:
            return send()
        except Exception as exc:
            raise translate(exc) from exc


def keyboard(buttons: Buttons) -> InlineKeyboardMarkup | None:
    """One row of inline buttons; ``callback_data`` must fit Telegram's 64 bytes."""
    if not buttons:
        return None
    for _, data in buttons:
        if len(data.encode()) > CALLBACK_DATA_MAX:
            raise ValueError(f"callback_data over {CALLBACK_DATA_MAX} bytes: {data!r}")
    markup = InlineKeyboardMarkup()
    markup.row(*[InlineKeyboardButton(text, callback_data=data) for text, data in buttons])
    return markup


def translate(exc: Exception) -> TelegramError:
    """The ``TelegramError`` for what pyTelegramBotAPI or the network raised; anything else
    is a bug of ours and is raised again as it is."""
    if isinstance(exc, TelegramError):
        return exc
    if isinstance(exc, apihelper.ApiTelegramException):
        code, description = int(exc.error_code), str(exc.description)
        params = (exc.result_json or {}).get("parameters") or {}
        retry = params.get("retry_after") if isinstance(params, dict) else None
        reason = f"telegram {code}: {description}"
        if code == 429:
            return TelegramRetryAfter(reason, code, float(retry) if retry is not None else None)
        if code == 403:
            return TelegramBlocked(reason, code)
        if 400 <= code < 500:
            return TelegramRefused(reason, code)
        return TelegramUnavailable(reason, code)
    if isinstance(exc, apihelper.ApiHTTPException):
        status = int(getattr(exc.result, "status_code", 0) or 0)
        if 400 <= status < 500 and status not in (408, 429):
            return TelegramRefused(f"telegram HTTP {status}", status)
        return TelegramUnavailable(f"telegram HTTP {status}", status)
    if isinstance(exc, apihelper.ApiInvalidJSONException):
        return TelegramUnavailable("telegram answered something that is not JSON")
    if isinstance(exc, requests.ReadTimeout):
        return TelegramUnavailable("telegram did not answer in time", maybe_delivered=True)
    if isinstance(exc, (requests.RequestException, OSError)):
        # the message of a requests error holds the URL, and the URL holds the bot token
        return TelegramUnavailable(f"telegram unreachable: {type(exc).__name__}")
    raise exc


class Upload:
    """A file for the Bot API with its exact size, so its body can stream."""

    def __init__(self, stream: IO[bytes], size_bytes: int, file_name: str = "video.mp4",
                 content_type: str = "video/mp4") -> None:
        self.stream = stream
        self.size_bytes = size_bytes
        self.file_name = file_name
        self.content_type = content_type


class MultipartBody:
    """``multipart/form-data`` read from the files as it is sent: one chunk in memory."""

    def __init__(self, files: dict[str, Upload]) -> None:
        self.boundary = secrets.token_hex(16)
        self.files = files
        self.heads = {name: (f"--{self.boundary}\r\nContent-Disposition: form-data; "
                             f"name=\"{name}\"; filename=\"{f.file_name}\"\r\n"
                             f"Content-Type: {f.content_type}\r\n\r\n").encode()
                      for name, f in files.items()}
        self.tail = f"--{self.boundary}--\r\n".encode()
        self.length = len(self.tail) + sum(len(self.heads[n]) + f.size_bytes + 2
                                           for n, f in files.items())

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:  # requests sends a Content-Length, not chunks
        return self.length

    def __iter__(self) -> Iterator[bytes]:
        for name, upload in self.files.items():
            yield self.heads[name]
            sent = 0
            while chunk := upload.stream.read(min(CHUNK_BYTES, upload.size_bytes - sent)):
                sent += len(chunk)
                yield chunk
            if sent != upload.size_bytes:
                raise TelegramUnavailable(f"stored video ended at {sent} of "
                                          f"{upload.size_bytes} bytes")
            yield b"\r\n"
        yield self.tail


_local = threading.local()


def _session() -> requests.Session:
    session: requests.Session | None = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    return session


def send_request(method: str, url: str, params: dict[str, Any] | None = None,
                 files: dict[str, Any] | None = None, timeout: Any = None,
                 proxies: Any = None) -> requests.Response:
    """pyTelegramBotAPI's request sender (its ``CUSTOM_REQUEST_SENDER`` hook): ``Upload``
    files stream; everything else goes exactly as pyTelegramBotAPI would send it."""
    if files and all(isinstance(f, Upload) for f in files.values()):
        body = MultipartBody(files)
        return _session().request(method, url, params=params, data=body, timeout=timeout,
                                  proxies=proxies, headers={"Content-Type": body.content_type})
    return _session().request(method, url, params=params, files=files, timeout=timeout,
                              proxies=proxies)
