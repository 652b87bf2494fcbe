"""OpenAI Videos (Sora 2): the request out, the faults back, every recorded shape, webhooks.

Fixtures in ``tests/fixtures/openai``: [DOC] are providers.md §4's literal examples, [COMPOSED]
are built from its documented field lists (the docs give no literal example of that state).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import responses

from tests.listeners import Listener
from videopoll.errors import (
    CallbackRejected,
    PermanentError,
    RateLimitedError,
    SubmitOutcomeUnknownError,
    TaskNotFoundError,
    TransientError,
    VideopollError,
)
from videopoll.fake_provider import FakeProvider, start_in_thread
from videopoll.fake_provider.openai import WEBHOOK_SECRET, OpenAIFake
from videopoll.models import ErrorCode, GenerationSpec, PollState, ProviderResponse
from videopoll.providers import get_model
from videopoll.providers.base import CallbackRequest, Provider
from videopoll.providers.openai import OpenAIProvider
from videopoll.providers.standard_webhooks import sign, signed_headers

BASE = "https://api.openai.test/v1"
KEY = "sk-test"
FIXTURES = Path(__file__).parent / "fixtures" / "openai"
S, R, Q, F = PollState.SUCCEEDED, PollState.RUNNING, PollState.QUEUED, PollState.FAILED


def body(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def adapter(secret: str | None = WEBHOOK_SECRET) -> Provider:
    return OpenAIProvider.with_config(base_url=BASE, api_key=KEY, webhook_secret=secret,
                                      timeout=2)


def spec(model: str = "sora-2", aspect: str = "16:9", seconds: int = 8,
         images: list[str] | None = None) -> GenerationSpec:
    return GenerationSpec(model=model, prompt="a red fox", aspect_ratio=aspect,
                          duration_seconds=seconds, image_urls=images or [])


def sent(mocked: responses.RequestsMock) -> Any:
    raw = mocked.calls[0].request.body
    return json.loads(raw if raw is not None else b"null")


# --- submit ----------------------------------------------------------------------------------
def test_the_models_are_reached_only_by_their_qualified_names() -> None:
    assert get_model("openai:sora-2").family == "openai"
    assert get_model("sora-2").family == "kie_market"  # KIE Market owns the bare name
    assert get_model("openai:sora-2-pro").durations == (4, 8, 12)


def test_text_submit_sends_the_documented_body_and_no_webhook(
    mocked: responses.RequestsMock
) -> None:
    mocked.post(f"{BASE}/videos", json=body("queued"))
    task = adapter().submit(get_model("openai:sora-2"), spec(),
                            "https://us.example/callbacks/openai")
    assert task == body("queued")["id"]
    request = mocked.calls[0].request
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    # seconds is a string enum; there is no per-request webhook field (providers.md §4.1)
    assert sent(mocked) == {"model": "sora-2", "prompt": "a red fox", "seconds": "8",
                            "size": "1280x720"}


def test_image_submit_sends_input_reference_and_portrait_size(
    mocked: responses.RequestsMock
) -> None:
    mocked.post(f"{BASE}/videos", json=body("queued"))
    adapter().submit(get_model("openai:sora-2-pro"),
                     spec("sora-2-pro", "9:16", 12, ["https://img.example/a.png"]), None)
    assert sent(mocked) == {"model": "sora-2-pro", "prompt": "a red fox", "seconds": "12",
                            "size": "720x1280",
                            "input_reference": {"image_url": "https://img.example/a.png"}}


@pytest.mark.parametrize(("status", "payload", "expected", "code"), [
    (401, body("error_invalid_api_key"), PermanentError, ErrorCode.PROVIDER_AUTH_FAILED),
    (402, {"error": {"message": "Payment required"}}, PermanentError,
     ErrorCode.INSUFFICIENT_CREDITS),
    (429, body("error_insufficient_quota"), PermanentError, ErrorCode.INSUFFICIENT_CREDITS),
    (429, body("error_rate_limit"), RateLimitedError, None),
    (400, body("error_moderation"), PermanentError, ErrorCode.MODERATION_REJECTED),
    (400, body("error_invalid_seconds"), PermanentError, ErrorCode.VALIDATION_FAILED),
    (500, body("error_server"), SubmitOutcomeUnknownError, None),
    (502, "<html>Bad Gateway</html>", SubmitOutcomeUnknownError, None),
    (408, {"error": {"message": "timeout"}}, SubmitOutcomeUnknownError, None),
    (200, "not json{{", SubmitOutcomeUnknownError, None),
    (200, {"object": "video", "status": "queued"}, SubmitOutcomeUnknownError, None),
], ids=["401", "402", "429-quota", "429", "400-moderation", "400-validation", "500", "502",
        "408", "200-garbled", "200-no-id"])
def test_submit_error_mapping(mocked: responses.RequestsMock, status: int, payload: Any,
                              expected: type[VideopollError], code: ErrorCode | None) -> None:
    kwargs: dict[str, Any] = ({"json": payload} if not isinstance(payload, str)
                              else {"body": payload})
    mocked.post(f"{BASE}/videos", status=status, **kwargs)
    with pytest.raises(expected) as info:
        adapter().submit(get_model("openai:sora-2"), spec(), None)
    if code is not None:
        assert isinstance(info.value, PermanentError) and info.value.code == code


# --- status ----------------------------------------------------------------------------------
def test_fetch_quotes_the_id_into_one_path_segment(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{BASE}/videos/video%2Fodd", json=body("queued"))
    assert adapter().fetch("video/odd").http_status == 200


CONTENT = f"{BASE}/videos/video_abc123/content?variant=video"


@pytest.mark.parametrize(("fixture", "state", "url", "code", "progress"), [
    pytest.param("queued", Q, None, None, 0, id="[DOC] queued"),
    pytest.param("in_progress", R, None, None, 33, id="[DOC] in_progress"),
    pytest.param("completed", S, CONTENT, None, 100, id="[COMPOSED] completed"),
    pytest.param("completed_without_id", S, None, None, 100,
                 id="[COMPOSED] completed, no id: no URL to build"),
    pytest.param("failed_moderation", F, None, ErrorCode.MODERATION_REJECTED, None,
                 id="[COMPOSED] failed moderation"),
    pytest.param("failed_guardrail_face", F, None, ErrorCode.MODERATION_REJECTED, None,
                 id="[COMPOSED] failed guardrail"),
    pytest.param("failed_input_reference", F, None, ErrorCode.ASSET_FETCH_FAILED, None,
                 id="[COMPOSED] failed input image"),
    pytest.param("failed_internal", F, None, ErrorCode.UNKNOWN_PROVIDER_ERROR, None,
                 id="[COMPOSED] failed internal"),
    pytest.param("failed_no_error", F, None, ErrorCode.UNKNOWN_PROVIDER_ERROR, None,
                 id="[COMPOSED] failed, error null"),
    pytest.param("status_expired", F, None, ErrorCode.PROVIDER_TIMEOUT, None,
                 id="[COMPOSED] expired (Batch)"),
    pytest.param("progress_float", R, None, None, 46, id="[COMPOSED] float progress"),
    pytest.param("status_undocumented", R, None, None, 50,
                 id="[COMPOSED] undocumented status is running"),
])
def test_recorded_video_objects(fixture: str, state: PollState, url: str | None,
                                code: ErrorCode | None, progress: int | None) -> None:
    result = adapter().normalize(ProviderResponse(http_status=200, body=body(fixture)))
    assert result.state is state
    assert result.output_urls == ([url] if url else [])
    assert result.error_code == code
    assert result.parser == "openai_video_object"
    if progress is not None:
        assert result.progress == progress
    if state is F:
        assert result.provider_message


def test_a_failure_keeps_the_providers_own_words() -> None:
    result = adapter().normalize(ProviderResponse(http_status=200,
                                                  body=body("failed_moderation")))
    assert result.provider_message == ("moderation_blocked: Your request was blocked by our "
                                       "moderation system.")


@pytest.mark.parametrize(("status", "payload", "expected"), [
    (401, body("error_invalid_api_key"), PermanentError),
    (404, body("error_not_found"), TaskNotFoundError),
    (429, body("error_rate_limit"), RateLimitedError),
    (500, body("error_server"), TransientError),
    (200, None, TransientError),
    (200, {"code": 200, "msg": "success", "data": {"taskId": "t", "successFlag": 1,
           "response": {"resultUrls": ["https://kie.example/v.mp4"]}}}, TransientError),
], ids=["401", "404", "429", "500", "not-json", "kie-shaped"])
def test_status_faults(status: int, payload: Any, expected: type[VideopollError]) -> None:
    resp = ProviderResponse(http_status=status, body=payload, text_sample="x",
                            retry_after=3.0 if status == 429 else None)
    with pytest.raises(expected) as info:
        adapter().normalize(resp)
    if isinstance(info.value, RateLimitedError):
        assert info.value.retry_after == 3.0


# --- webhooks --------------------------------------------------------------------------------
def webhook(name: str, secret: str = WEBHOOK_SECRET, now: float | None = None,
            headers: dict[str, str] | None = None) -> CallbackRequest:
    raw = json.dumps(body(name)).encode()
    sent_headers = signed_headers(secret, raw, now) if headers is None else headers
    return CallbackRequest(raw=raw, body=json.loads(raw), headers=sent_headers)


@pytest.mark.parametrize("name", ["webhook_video_completed", "webhook_video_failed"])
def test_a_signed_video_event_names_the_video(name: str) -> None:
    assert adapter().callback(webhook(name)).task_id == "video_abc123"  # [DOC] payload


def test_one_of_several_signatures_may_match() -> None:
    raw = json.dumps(body("webhook_video_completed")).encode()
    headers = signed_headers(WEBHOOK_SECRET, raw)
    good = headers["webhook-signature"]
    headers["webhook-signature"] = f"v1,AAAA v2,{good[3:]} {good}"
    req = CallbackRequest(raw=raw, body=json.loads(raw), headers=headers)
    assert adapter().callback(req).task_id == "video_abc123"


def test_events_about_other_things_are_acknowledged_and_ignored() -> None:
    assert adapter().callback(webhook("webhook_other_event")).task_id is None


def _tampered() -> CallbackRequest:
    req = webhook("webhook_video_completed")
    return CallbackRequest(raw=req.raw.replace(b"abc123", b"abc999"),
                           body=req.body, headers=req.headers)


@pytest.mark.parametrize(("req", "provider", "status"), [
    (lambda: webhook("webhook_video_completed", secret="whsec_" + "QUJD" * 8), adapter, 401),
    (_tampered, adapter, 401),
    (lambda: webhook("webhook_video_completed", now=time.time() - 301), adapter, 401),
    (lambda: webhook("webhook_video_completed", now=time.time() + 301), adapter, 401),
    (lambda: webhook("webhook_video_completed", headers={}), adapter, 401),
    (lambda: webhook("webhook_video_completed", headers={
        "webhook-id": "m", "webhook-timestamp": "soon", "webhook-signature": "v1,x"}),
     adapter, 401),
    (lambda: webhook("webhook_video_completed"), lambda: adapter(secret=None), 401),
    (lambda: webhook("webhook_no_id"), adapter, 400),
], ids=["wrong-secret", "body-changed", "stale", "future", "no-headers", "odd-timestamp",
        "no-secret-configured", "no-video-id"])
def test_callbacks_that_are_refused(req: Any, provider: Any, status: int) -> None:
    with pytest.raises(CallbackRejected) as info:
        provider().callback(req())
    assert info.value.status == status


def test_the_signature_is_standard_webhooks() -> None:
    """HMAC-SHA256 over ``id.timestamp.body`` with the base64 part of the secret."""
    key = base64.b64decode(WEBHOOK_SECRET.removeprefix("whsec_"))
    digest = hmac.new(key, b"msg_1.1700000000.{}", hashlib.sha256).digest()
    assert sign(WEBHOOK_SECRET, "msg_1", "1700000000", b"{}") == (
        "v1," + base64.b64encode(digest).decode())


# --- downloads and cancel --------------------------------------------------------------------
@pytest.mark.parametrize(("url", "auth"), [
    (CONTENT, True),
    ("https://api.openai.test:8443/v1/videos/v/content", False),
    ("http://api.openai.test/v1/videos/v/content", False),
    ("https://cdn.example/v.mp4", False),
])
def test_download_headers_go_to_the_api_origin_only(url: str, auth: bool) -> None:
    expected = {"Authorization": f"Bearer {KEY}"} if auth else {}
    assert adapter().download_headers(url) == expected


def test_cancel_is_not_offered_and_sends_nothing(mocked: responses.RequestsMock) -> None:
    # DELETE /videos/{id} deletes the video; it is not documented to stop a render
    assert OpenAIProvider.can_cancel is False
    assert adapter().cancel("video_abc123") is False
    assert not mocked.calls


# --- the fake's project webhook --------------------------------------------------------------
@pytest.fixture(scope="module")
def fakes() -> Iterator[FakeProvider]:
    server = start_in_thread()
    yield server
    server.stop()


def test_the_fake_sends_a_signed_event_to_its_project_webhook(fakes: FakeProvider) -> None:
    listener = Listener()
    fake = fakes.fake("openai")
    assert isinstance(fake, OpenAIFake)
    fakes.state.callback_delay = 0.05
    fake.webhook_url = f"{listener.url}/callbacks/openai"
    try:
        provider = OpenAIProvider.with_config(**fake.config(fakes.server.base_url))
        task = provider.submit(get_model("openai:sora-2"), spec(), None)
        deadline = time.monotonic() + 5
        while not listener.received and time.monotonic() < deadline:
            time.sleep(0.02)
        got = listener.received[0]
        req = CallbackRequest(raw=got.body, body=json.loads(got.body),
                              headers={k.lower(): v for k, v in got.headers.items()})
        assert provider.callback(req).task_id == task
    finally:
        fake.webhook_url = None
        fakes.state.callback_delay = 1.0
        listener.stop()


def test_the_fake_content_wants_the_key_and_delete_removes_the_video(
    fakes: FakeProvider
) -> None:
    provider = OpenAIProvider.with_config(**fakes.fake("openai").config(fakes.server.base_url))
    task = provider.submit(get_model("openai:sora-2"), spec(), None)
    url = f"{provider.base_url}/videos/{task}/content?variant=video"
    assert requests.get(url, timeout=5).status_code == 401
    answer = requests.get(url, headers=provider.download_headers(url), timeout=5)
    assert answer.status_code == 200 and b"ftyp" in answer.content[:64]
    deleted = requests.delete(f"{provider.base_url}/videos/{task}",
                              headers=provider.headers(), timeout=5)
    assert deleted.json() == {"id": task, "object": "video.deleted", "deleted": True}
    with pytest.raises(TaskNotFoundError):
        provider.normalize(provider.fetch(task))


def test_the_fakes_project_webhook_can_be_set_over_http(fakes: FakeProvider) -> None:
    fake = fakes.fake("openai")
    assert isinstance(fake, OpenAIFake)
    url = f"{fakes.server.base_url}/openai/_fake/webhook"
    try:
        answer = requests.post(url, json={"url": "http://127.0.0.1:9/cb"}, timeout=5)
        assert answer.json() == {"webhook_url": "http://127.0.0.1:9/cb"}
        assert fake.webhook_url == "http://127.0.0.1:9/cb"
    finally:
        requests.post(url, json={"url": None}, timeout=5)
    assert fake.webhook_url is None


def test_polling_relaxes_only_when_this_deployment_receives_the_webhooks(
    settings: Any,
) -> None:
    """OpenAI's webhooks are set up in its dashboard, not per request: without the secret
    nobody will call back, so the job keeps the normal poll schedule."""
    from videopoll.polling import callback_url_for
    from videopoll.runtime import build_runtime

    base = settings.model_copy(update={"public_base_url": "https://vp.example"})
    without = build_runtime(base.model_copy(update={"providers": {"openai": {
        "base_url": BASE, "api_key": KEY}}}))
    assert not without.provider("openai").will_push()
    assert callback_url_for(without, "openai") is None
    with_secret = build_runtime(base.model_copy(update={"providers": {"openai": {
        "base_url": BASE, "api_key": KEY, "webhook_secret": WEBHOOK_SECRET}}}))
    assert callback_url_for(with_secret, "openai") == "https://vp.example/callbacks/openai"
