"""Each channel through its real client code against a real local server."""

from __future__ import annotations

import io
import json

import pytest
import requests
from pydantic import SecretStr
from standardwebhooks import Webhook

from tests.listeners import Listener
from tests.test_delivery import delivering
from videopoll import delivery, notify
from videopoll.errors import NotifyError
from videopoll.fake_provider import FakeProvider
from videopoll.fake_telegram import FakeTelegram
from videopoll.models import JobRecord
from videopoll.notifiers import ConsoleNotifier
from videopoll.notifiers.chat import DiscordNotifier, SlackNotifier
from videopoll.notifiers.telegram import TelegramNotifier
from videopoll.notifiers.webhook import WebhookNotifier
from videopoll.runtime import Runtime

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def tg(bot_api: FakeTelegram) -> FakeTelegram:
    return bot_api


def stored_job(rt: Runtime, fake: FakeProvider, **fields: object) -> str:
    job_id = delivering(rt, f"{fake.base_url}/files/veo_ok1_{id(fields)}.mp4")

    def change(j: JobRecord) -> None:
        for k, v in fields.items():
            setattr(j, k, v)

    rt.store.update(job_id, change)
    assert delivery.store_output(rt, job_id) == "stored"
    return job_id


def with_telegram(rt: Runtime, tg: FakeTelegram, max_bytes: int = 50 * 1024 * 1024) -> None:
    rt.notifiers = [TelegramNotifier("123456:TEST-token", tg.base_url, max_bytes)]


def test_a_veo_video_goes_to_telegram_once_with_its_buttons(
    rt: Runtime, fake: FakeProvider, tg: FakeTelegram
) -> None:
    with_telegram(rt, tg)
    job_id = stored_job(rt, fake, chat_id=4242)
    notify.notify_user(rt, job_id)
    notify.notify_user(rt, job_id)  # a re-run sends nothing
    [call] = tg.calls("sendVideo")
    assert call["chat_id"] == "4242"
    assert call["video"]["file_size"] == rt.store.get(job_id).delivery.size_bytes  # type: ignore[union-attr]
    assert call["video"]["head"] == "ftyp"  # the real MP4 bytes were uploaded
    keyboard = json.loads(call["reply_markup"])["inline_keyboard"]
    assert [b["text"] for b in keyboard[0]] == ["Publish", "Regenerate", "Extend", "Get 1080p",
                                              "Get 4K"]
    assert keyboard[0][2]["callback_data"] == f"ext:{job_id}"
    assert call["caption"].startswith("veo3 · ")
    sent = rt.store.channel_results(job_id)["notify:telegram"]
    assert sent["status"] == "sent" and sent["message_id"].isdigit()


def test_telegram_429_waits_retry_after_then_sends_once(
    rt: Runtime, fake: FakeProvider, tg: FakeTelegram
) -> None:
    with_telegram(rt, tg)
    job_id = stored_job(rt, fake, chat_id=7)
    tg.script("sendVideo", {"error_code": 429, "retry_after": 3})
    with pytest.raises(NotifyError) as info:
        notify.notify_user(rt, job_id)
    assert info.value.retry_after == 3 and not info.value.permanent
    notify.notify_user(rt, job_id)  # the task's retry
    notify.notify_user(rt, job_id)
    assert [c.get("answered", 200) for c in tg.calls("sendVideo")] == [429, 200]


def test_a_blocked_bot_is_recorded_and_not_retried(
    rt: Runtime, fake: FakeProvider, tg: FakeTelegram
) -> None:
    with_telegram(rt, tg)
    job_id = stored_job(rt, fake, chat_id=8)
    tg.script("sendVideo", {"error_code": 403})
    notify.notify_user(rt, job_id)  # permanent for this chat: no exception, no retry
    notify.notify_user(rt, job_id)
    assert len(tg.calls("sendVideo")) == 1
    result = rt.store.channel_results(job_id)["notify:telegram"]
    assert result["status"] == "failed" and "blocked" in result["error"]


def test_a_video_over_the_bot_upload_limit_is_sent_as_a_link(
    rt: Runtime, fake: FakeProvider, tg: FakeTelegram
) -> None:
    rt.settings = rt.settings.model_copy(update={"public_base_url": "https://api.example"})
    with_telegram(rt, tg, max_bytes=1000)
    job_id = stored_job(rt, fake, chat_id=9)
    notify.notify_user(rt, job_id)
    assert tg.calls("sendVideo") == []
    [message] = tg.calls("sendMessage")
    assert "https://api.example/videos/videos/veo3/" in message["text"]


def test_failures_reach_telegram_in_user_words(rt: Runtime, tg: FakeTelegram) -> None:
    from tests.test_store import make_job
    from videopoll.models import ErrorCode
    from videopoll.polling import fail

    with_telegram(rt, tg)
    job = make_job(rt)
    job.chat_id = 11
    rt.store.create(job)
    fail(rt, job.job_id, ErrorCode.MODERATION_REJECTED, "raw: flagged by Website policy x")
    notify.notify_user(rt, job.job_id)
    [message] = tg.calls("sendMessage")
    assert message["text"] == (
        "This request could not be processed. Try changing the prompt or assets.")


def test_the_chat_comes_from_the_session_when_the_request_had_none(
    rt: Runtime, fake: FakeProvider, tg: FakeTelegram
) -> None:
    with_telegram(rt, tg)
    rt.store.redis.set("session:s", json.dumps({"chatId": "555", "language": "de"}))
    job_id = stored_job(rt, fake)  # make_job's session id is "s"
    notify.notify_user(rt, job_id)
    assert [c["chat_id"] for c in tg.calls("sendVideo")] == ["555"]


def test_no_chat_anywhere_still_succeeds_and_says_why(
    rt: Runtime, fake: FakeProvider, tg: FakeTelegram
) -> None:
    with_telegram(rt, tg)
    out = io.StringIO()
    rt.notifiers.append(ConsoleNotifier(out))
    job_id = stored_job(rt, fake)
    notify.notify_user(rt, job_id)
    delivery.record_result(rt, job_id)
    job = rt.store.get(job_id)
    assert job is not None and job.status.value == "succeeded"
    skipped = rt.store.channel_results(job_id)["notify:telegram"]
    assert skipped == {"status": "skipped", "reason": "no session at session:s",
                       "at": skipped["at"]}
    assert tg.calls() == []


def test_the_callback_is_signed_and_verifies(
    rt: Runtime, fake: FakeProvider, listener: Listener
) -> None:
    rt.notifiers = [WebhookNotifier(SECRET, 5, allow_private=True)]
    job_id = stored_job(rt, fake, callback_url=f"{listener.url}/resume/abc")
    notify.notify_user(rt, job_id)
    notify.notify_user(rt, job_id)
    [got] = listener.received
    assert got.path == "/resume/abc"
    payload = Webhook(SECRET).verify(got.body, got.headers)
    assert payload["type"] == "video.succeeded"
    assert payload["data"]["jobId"] == job_id and payload["data"]["status"] == "succeeded"
    assert got.headers["webhook-id"] == f"{job_id}.succeeded"
    link = payload["data"]["outputUrl"]
    assert link is None or not link.startswith("file:")
    with pytest.raises(Exception, match="signature"):
        Webhook(SECRET).verify(got.body.replace(b"succeeded", b"failed"), got.headers)


def test_the_callback_carries_a_status_page_link_a_person_can_open(
    rt: Runtime, fake: FakeProvider, listener: Listener
) -> None:
    from videopoll.view_links import token_valid

    rt.settings = rt.settings.model_copy(update={
        "public_base_url": "https://vp.example", "view_secret": SecretStr("view-key")})
    rt.notifiers = [WebhookNotifier(SECRET, 5, allow_private=True)]
    job_id = stored_job(rt, fake, callback_url=f"{listener.url}/resume/view")
    notify.notify_user(rt, job_id)
    [got] = listener.received
    link = Webhook(SECRET).verify(got.body, got.headers)["data"]["viewUrl"]
    page, _, token = link.partition("?token=")
    assert page == f"https://vp.example/jobs/{job_id}/view"
    assert token_valid(rt.settings, job_id, token)


@pytest.mark.parametrize(("status", "permanent"), [(500, False), (503, False), (429, False),
                                                   (410, True), (400, True), (302, True)])
def test_callback_answers_decide_retry_or_stop(
    rt: Runtime, fake: FakeProvider, status: int, permanent: bool
) -> None:
    server = Listener(statuses=[status])
    try:
        notifier = WebhookNotifier(SECRET, 5, allow_private=True)
        rt.notifiers = [notifier]
        job_id = stored_job(rt, fake, callback_url=f"{server.url}/cb")
        if permanent:
            notify.notify_user(rt, job_id)
            assert rt.store.channel_results(job_id)["notify:webhook"]["status"] == "failed"
        else:
            with pytest.raises(NotifyError):
                notify.notify_user(rt, job_id)
            notify.notify_user(rt, job_id)  # the retry
            assert rt.store.channel_results(job_id)["notify:webhook"]["status"] == "sent"
        assert all(r.path == "/cb" for r in server.received)  # a redirect is never followed
    finally:
        server.stop()


def test_a_callback_to_a_private_address_is_refused(
    rt: Runtime, fake: FakeProvider, listener: Listener
) -> None:
    rt.notifiers = [WebhookNotifier(SECRET, 5, allow_private=False)]
    job_id = stored_job(rt, fake, callback_url=f"{listener.url}/cb")
    notify.notify_user(rt, job_id)
    assert listener.received == []
    assert rt.store.channel_results(job_id)["notify:webhook"]["status"] == "failed"


def test_slack_and_discord_get_their_payload_shapes(
    rt: Runtime, fake: FakeProvider, listener: Listener
) -> None:
    rt.notifiers = [SlackNotifier(f"{listener.url}/slack", 5),
                    DiscordNotifier(f"{listener.url}/discord", 5)]
    job_id = stored_job(rt, fake)
    notify.notify_user(rt, job_id)
    slack, discord = (json.loads(r.body) for r in listener.received)
    assert "Your video is ready." in slack["text"] and slack["blocks"][0]["type"] == "section"
    assert "Your video is ready." in discord["content"]
    assert discord["embeds"][0]["title"] == "Your video is ready."


def test_the_delayed_notice_skips_the_callback(
    rt: Runtime, listener: Listener
) -> None:
    from tests.test_store import make_job
    from videopoll.models import JobStatus

    out = io.StringIO()
    rt.notifiers = [ConsoleNotifier(out), WebhookNotifier(SECRET, 5, allow_private=True)]
    job = make_job(rt)
    job.callback_url = f"{listener.url}/cb"
    rt.store.create(job)
    rt.store.update(job.job_id, lambda j: setattr(j, "status", JobStatus.DELAYED))
    notify.notify_delayed(rt, job.job_id)
    assert listener.received == []  # an n8n Wait node must not resume on "still checking"
    assert len(out.getvalue().splitlines()) == 1


def test_the_fake_bot_api_answers_like_the_real_one(tg: FakeTelegram) -> None:
    ok = requests.post(f"{tg.base_url}/bot1:x/sendMessage", json={"chat_id": 1, "text": "hi"},
                       timeout=5).json()
    assert ok["ok"] is True and ok["result"]["text"] == "hi"
    tg.script("sendMessage", {"error_code": 429, "retry_after": 2})
    limited = requests.post(f"{tg.base_url}/bot1:x/sendMessage", json={"chat_id": 1},
                            timeout=5)
    assert limited.status_code == 429
    assert limited.json()["parameters"] == {"retry_after": 2}


def test_progress_is_one_message_edited_in_place(
    rt: Runtime, tg: FakeTelegram
) -> None:
    from tests.test_store import make_job
    from videopoll.models import JobStatus
    from videopoll.transitions import progress_text

    with_telegram(rt, tg)
    job = make_job(rt)
    job.chat_id, job.progress_messages, job.max_attempts = 31, True, 15
    rt.store.create(job)
    for attempt in (1, 2, 3):
        rt.store.update(job.job_id, lambda j, a=attempt: setattr(j, "attempts", a))
        text = progress_text(rt.store.get(job.job_id))  # type: ignore[arg-type]
        assert text == f"Generating… {attempt}/15"
        notify.update_progress(rt, job.job_id, text)
    rt.store.update(job.job_id, lambda j: setattr(j, "status", JobStatus.DELAYED))
    notify.notify_delayed(rt, job.job_id)
    assert [c["text"] for c in tg.calls("sendMessage")] == ["Generating… 1/15"]
    assert [c["text"] for c in tg.calls("editMessageText")] == [
        "Generating… 2/15", "Generating… 3/15",
        "This is taking longer than usual. We are still checking."]
    assert len({c["message_id"] for c in tg.calls("editMessageText")}) == 1  # one message
