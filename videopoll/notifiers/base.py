"""The one interface every notification channel implements.

A notifier is one channel: the console, the user's Telegram chat, the caller's webhook,
Slack, Discord. Delivery asks every configured notifier that wants an event to send it, each
under its own stage marker, so a retry resends only to the channels that have not answered
(invariant 4). A notifier raises ``NotifyError``: ``permanent`` for "this channel will never
take this message" (recorded, the others go on), otherwise the stage retries it.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import IO, Any, ClassVar, Literal

from videopoll.models import JobRecord

Event = Literal["succeeded", "failed", "canceled", "delayed"]
FINAL_EVENTS: frozenset[Event] = frozenset({"succeeded", "failed", "canceled"})


@dataclass(frozen=True)
class Button:
    text: str
    action: str  # pub | regen | ext | hd | uhd

    def data(self, job_id: str) -> str:
        return f"{self.action}:{job_id}"  # Telegram allows 64 bytes; job ids are 36


@dataclass(frozen=True)
class Video:
    """The stored video, openable on demand (a notifier that uploads it streams from here)."""

    size_bytes: int
    open: Callable[[], AbstractContextManager[IO[bytes]]]


@dataclass(frozen=True)
class Notice:
    """One event of one job, in the words a person sees."""

    event: Event
    text: str
    caption: str = ""
    link: str | None = None  # made now (public, presigned or /videos/), never stored
    chat_id: str | int | None = None
    chat_reason: str = ""  # why there is no chat id, when there is none
    buttons: tuple[Button, ...] = ()
    video: Video | None = None
    progress_message_id: int | None = None  # the chat's in-place progress message, if any
    view: dict[str, Any] = field(default_factory=dict)  # the public job view, for callbacks


class Notifier(abc.ABC):
    name: ClassVar[str]
    events: ClassVar[frozenset[Event]] = FINAL_EVENTS | {"delayed"}

    def skip_reason(self, job: JobRecord, notice: Notice) -> str | None:
        """Why this channel has nothing to send for this job, or ``None`` to send."""
        return None if notice.event in self.events else "not an event this channel takes"

    @abc.abstractmethod
    def send(self, job: JobRecord, notice: Notice) -> str:
        """Send ``notice``; return the channel's message id (or a receipt)."""
