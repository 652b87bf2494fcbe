"""Slack and Discord incoming webhooks, against a real HTTP listener on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tests.listeners import Listener
from videopoll.chat_webhooks import send_discord, send_slack
from videopoll.webhooks import WebhookError

LINK = "https://bucket.s3.example/videos/veo3/j1.mp4?X-Amz-Signature=abc&X-Amz-Expires=3600"


def test_slack_gets_text_blocks_and_link_buttons(listener: Listener) -> None:
    receipt = send_slack(listener.url + "/services/T0/B0/x",
                         "Your video is ready <!channel> & more", LINK,
                         [("Publish", "https://app.example/publish/j1")], timeout=5)
    assert receipt == "ok"
    [got] = listener.received
    body = json.loads(got.body)
    # what a prompt says cannot ping the channel: &, < and > are escaped as Slack asks
    assert body["text"].startswith("Your video is ready &lt;!channel&gt; &amp; more")
    section, actions = body["blocks"]
    assert section["type"] == "section" and section["text"]["type"] == "mrkdwn"
    assert [(e["text"]["text"], e["url"]) for e in actions["elements"]] == [
        ("Watch the video", LINK), ("Publish", "https://app.example/publish/j1")]


def test_slack_without_a_link_sends_only_the_text(listener: Listener) -> None:
    send_slack(listener.url, "The provider did not return a result in time.", timeout=5)
    body = json.loads(listener.received[0].body)
    assert [b["type"] for b in body["blocks"]] == ["section"]


@pytest.mark.parametrize(("status", "answer", "permanent"), [
    (400, b"invalid_payload", True), (403, b"action_prohibited", True),
    (404, b"channel_not_found", True), (410, b"channel_is_archived", True),
    (429, b"rate_limited", False), (500, b"rollup_error", False),
])
def test_slack_refusals(listener: Listener, status: int, answer: bytes,
                        permanent: bool) -> None:
    listener.statuses, listener.bodies = [status], [answer]
    listener.headers = {"Retry-After": "30"}
    with pytest.raises(WebhookError) as caught:
        send_slack(listener.url, "hi", timeout=5)
    assert (caught.value.status, caught.value.permanent) == (status, permanent)
    assert answer.decode() in caught.value.reason  # Slack's own word for what went wrong
    assert caught.value.retry_after == (None if permanent else 30.0)


def test_discord_gets_content_an_embed_and_no_mentions(listener: Listener) -> None:
    listener.bodies = [json.dumps({"id": "1234567890", "channel_id": "9"}).encode()]
    message = send_discord(listener.url + "/api/webhooks/1/tok?thread_id=7",
                           "Your video is ready @everyone", LINK, title="veo3 · 8s · 1280x720",
                           description="a cat surfing", timeout=5)
    assert message == "1234567890"  # wait=true: Discord answers with the message it made
    [got] = listener.received
    assert got.path == "/api/webhooks/1/tok?thread_id=7&wait=true"
    body = json.loads(got.body)
    assert body["content"] == "Your video is ready @everyone"
    assert body["allowed_mentions"] == {"parse": []}  # @everyone is shown, not pinged
    assert body["embeds"] == [{"title": "veo3 · 8s · 1280x720", "description": "a cat surfing",
                               "url": LINK}]


def test_discord_limits_are_respected(listener: Listener) -> None:
    listener.bodies = [b"{}"]
    assert send_discord(listener.url, "x" * 5000, None, title="t" * 300, timeout=5) is None
    body = json.loads(listener.received[0].body)
    assert len(body["content"]) == 2000 and len(body["embeds"][0]["title"]) == 256


@pytest.mark.parametrize(("header", "body_seconds", "expected"), [
    (None, 1.25, 1.25),  # the body's retry_after is in seconds
    ("2", 1.25, 1.25),  # the body is the precise one
    ("2", 1500, 2.0),  # an old API version's milliseconds: the header is the sane one
    ("5", None, 5.0),
])
def test_discord_429_waits_what_it_said(listener: Listener, header: str | None,
                                        body_seconds: float | None, expected: float) -> None:
    listener.statuses = [429]
    listener.headers = {"Retry-After": header} if header else {}
    answer: dict[str, object] = {"message": "You are being rate limited.", "global": False}
    if body_seconds is not None:
        answer["retry_after"] = body_seconds
    listener.bodies = [json.dumps(answer).encode()]
    with pytest.raises(WebhookError) as caught:
        send_discord(listener.url, "hi", timeout=5)
    assert not caught.value.permanent and caught.value.retry_after == expected


@pytest.mark.parametrize(("status", "permanent"), [(400, True), (401, True), (404, True),
                                                   (500, False), (502, False)])
def test_discord_refusals(listener: Listener, status: int, permanent: bool) -> None:
    listener.statuses = [status]
    listener.bodies = [json.dumps({"message": "Unknown Webhook", "code": 10015}).encode()]
    with pytest.raises(WebhookError) as caught:
        send_discord(listener.url, "hi", timeout=5)
    assert (caught.value.status, caught.value.permanent) == (status, permanent)
    assert "10015" in caught.value.reason


def test_the_webhook_url_is_a_secret_and_never_in_an_error() -> None:
    gone = Listener()
    url = gone.url + "/api/webhooks/1/SECRET-TOKEN"
    gone.stop()
    sends: list[Callable[[], object]] = [lambda: send_discord(url, "hi", timeout=5),
                                         lambda: send_slack(url, "hi", timeout=5)]
    for send in sends:
        with pytest.raises(WebhookError) as caught:
            send()
        assert not caught.value.permanent and "SECRET-TOKEN" not in str(caught.value.args)


def test_private_addresses_are_refused_when_the_operator_says_so(listener: Listener) -> None:
    with pytest.raises(WebhookError) as caught:
        send_slack(listener.url, "hi", timeout=5, allow_private=False)
    assert caught.value.permanent and listener.received == []
