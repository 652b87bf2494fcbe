"""The registry of notification channels, chosen by ``NOTIFIERS`` (e.g. ``telegram,webhook``).

To add a channel: write ``notifiers/<name>.py`` with a ``Notifier`` subclass and add one
entry to ``build_notifiers``. The caller's ``callbackUrl`` is always honoured (the webhook
channel is on whenever a job carries one).
"""

from __future__ import annotations

from videopoll.notifiers.base import (
    FINAL_EVENTS,
    Button,
    Event,
    Notice,
    Notifier,
    Video,
)
from videopoll.notifiers.chat import DiscordNotifier, SlackNotifier
from videopoll.notifiers.console import ConsoleNotifier
from videopoll.notifiers.telegram import TelegramNotifier
from videopoll.notifiers.webhook import WebhookNotifier
from videopoll.settings import Settings

__all__ = ["FINAL_EVENTS", "Button", "ConsoleNotifier", "Event", "Notice", "Notifier", "Video",
           "build_notifiers"]

KNOWN = ("console", "telegram", "webhook", "slack", "discord")


def build_notifiers(settings: Settings) -> list[Notifier]:
    """One notifier per configured channel; a channel without its settings is an error."""
    unknown = [n for n in settings.notifiers if n not in KNOWN]
    if unknown:
        raise ValueError(f"NOTIFIERS: unknown {unknown}; choose from {', '.join(KNOWN)}")
    out: list[Notifier] = []
    for name in dict.fromkeys([*settings.notifiers, "webhook"]):
        if name == "console":
            out.append(ConsoleNotifier())
        elif name == "telegram":
            token = settings.secret("telegram_bot_token")
            if not token:
                raise ValueError("NOTIFIERS has telegram but TELEGRAM_BOT_TOKEN is unset")
            out.append(TelegramNotifier(token, settings.telegram_api_url,
                                        settings.telegram_upload_max_bytes))
        elif name == "webhook":
            out.append(WebhookNotifier(settings.secret("callback_secret"),
                                       settings.callback_timeout_seconds,
                                       settings.allow_private_urls,
                                       settings.callback_require_signature))
        elif name in ("slack", "discord"):
            url = settings.secret(f"{name}_webhook_url")
            if not url:
                raise ValueError(f"NOTIFIERS has {name} but {name.upper()}_WEBHOOK_URL is unset")
            cls = SlackNotifier if name == "slack" else DiscordNotifier
            out.append(cls(url, settings.callback_timeout_seconds))
    return out
