"""Team channels: Slack and Discord incoming webhooks, one POST per call.

Each builds the payload its service documents and posts it through ``webhooks.post`` (never
redirected, URL kept out of errors: these URLs are credentials). Errors are the same
``WebhookError`` as callbacks: 4xx (but 408, 429) permanent, the rest retryable.

- Slack answers ``ok`` or a short error word (``channel_is_archived``…) as plain text, and
  ``Retry-After`` on 429. Text is escaped (``&``, ``<``, ``>``) so a prompt cannot ping
  ``<!channel>``; links go in buttons, whose ``url`` needs no escaping.
- Discord is called with ``wait=true`` so it answers with the message it made (its id is the
  receipt delivery records). ``allowed_mentions`` is empty: ``@everyone`` in a prompt is shown,
  not pinged. Its 429 carries ``retry_after`` in the JSON body (seconds today; an old API
  version sent milliseconds, so the smaller of it and ``Retry-After`` wins).

The operator configures these URLs, so private addresses (an internal relay) are allowed
unless the caller says otherwise.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from videopoll.webhooks import (
    Answer,
    WebhookError,
    bounded_seconds,
    post,
    refusal,
    retry_after_header,
)

SLACK_TEXT_MAX = 3000  # a section block's text
SLACK_BUTTON_TEXT_MAX = 75
SLACK_URL_MAX = 3000
DISCORD_CONTENT_MAX = 2000
DISCORD_TITLE_MAX = 256
DISCORD_DESCRIPTION_MAX = 4096
_WORD = re.compile(r"[\w .:,'-]{1,100}")  # a service's short error text, safe to record

LinkButton = tuple[str, str]  # (label, url): opens the URL; no interactivity endpoint needed


def slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(text: str, video_link: str | None = None,
                  buttons: Sequence[LinkButton] = ()) -> dict[str, Any]:
    escaped = slack_escape(text)[:SLACK_TEXT_MAX]
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": escaped}}]
    links = [("Watch the video", video_link)] if video_link else []
    elements = [{"type": "button",
                 "text": {"type": "plain_text", "text": label[:SLACK_BUTTON_TEXT_MAX]},
                 "url": url}
                for label, url in [*links, *buttons] if len(url) <= SLACK_URL_MAX]
    if elements:
        blocks.append({"type": "actions", "elements": elements[:25]})
    return {"text": escaped, "blocks": blocks}


def send_slack(url: str, text: str, video_link: str | None = None,
               buttons: Sequence[LinkButton] = (), *, timeout: float,
               allow_private: bool = True) -> str:
    """Post to a Slack incoming webhook; Slack's answer (``ok``) is the receipt."""
    answer = _post_json(url, slack_payload(text, video_link, buttons), timeout, allow_private,
                        "slack")
    if answer.status >= 300:
        error = refusal("slack", answer, retry_after_header(answer.headers))
        word = _word(answer.body.decode("utf-8", "replace"))
        raise WebhookError(f"{error.reason}: {word}" if word else error.reason,
                           status=error.status, permanent=error.permanent,
                           retry_after=error.retry_after)
    return _word(answer.body.decode("utf-8", "replace")) or "ok"


def discord_payload(content: str, video_link: str | None = None, *, title: str | None = None,
                    description: str | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {"content": content[:DISCORD_CONTENT_MAX],
                               "allowed_mentions": {"parse": []}}
    if title or description or video_link:
        embed: dict[str, Any] = {"title": (title or "Video")[:DISCORD_TITLE_MAX]}
        if description:
            embed["description"] = description[:DISCORD_DESCRIPTION_MAX]
        if video_link:
            embed["url"] = video_link
        payload["embeds"] = [embed]
    return payload


def send_discord(url: str, content: str, video_link: str | None = None, *,
                 title: str | None = None, description: str | None = None, timeout: float,
                 allow_private: bool = True) -> str | None:
    """Post to a Discord webhook; the new message's id (``None`` if Discord gave none)."""
    payload = discord_payload(content, video_link, title=title, description=description)
    answer = _post_json(_with_wait(url), payload, timeout, allow_private, "discord")
    body = _json(answer.body)
    if answer.status >= 300:
        retry_after = retry_after_header(answer.headers)
        in_body = body.get("retry_after")
        if isinstance(in_body, int | float) and not isinstance(in_body, bool):
            seconds = bounded_seconds(float(in_body))
            retry_after = seconds if retry_after is None or seconds is None else min(
                seconds, retry_after)
        error = refusal("discord", answer, retry_after)
        detail = _word(f"{body.get('code', '')} {body.get('message', '')}".strip())
        raise WebhookError(f"{error.reason}: {detail}" if detail else error.reason,
                           status=error.status, permanent=error.permanent,
                           retry_after=error.retry_after)
    message_id = body.get("id")
    return str(message_id) if isinstance(message_id, str | int) else None


def _post_json(url: str, payload: dict[str, Any], timeout: float, allow_private: bool,
               what: str) -> Answer:
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return post(url, body, {"Content-Type": "application/json"}, timeout=timeout,
                allow_private=allow_private, what=what)


def _with_wait(url: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "wait"]
    return urlunsplit(parts._replace(query=urlencode([*query, ("wait", "true")])))


def _json(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _word(text: str) -> str:
    text = text.strip()
    return text if _WORD.fullmatch(text) else ""
