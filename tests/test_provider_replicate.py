"""Replicate predictions: the request out, the faults back, every recorded shape, webhooks.

Fixtures in ``tests/fixtures/replicate``: [DOC] is providers.md §6's literal prediction object
(and its 429 body); [3P] failure texts are ones reported from real models; [COMPOSED] are
built from the documented fields and states (the docs give no literal example of that state).
"""

from __future__ import annotations

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
from videopoll.fake_provider.replicate import WEBHOOK_SECRET
from videopoll.models import ErrorCode, GenerationSpec, PollState, ProviderResponse
from videopoll.providers import get_model
from videopoll.providers.base import CallbackRequest, Provider
from videopoll.providers.replicate import ReplicateProvider
from videopoll.providers.standard_webhooks import signed_headers

BASE = "https://api.replicate.test/v1"
KEY = "r8_test"
FIXTURES = Path(__file__).parent / "fixtures" / "replicate"
S, R, Q, F = PollState.SUCCEEDED, PollState.RUNNING, PollState.QUEUED, PollState.FAILED
IMAGE = "https://img.example/a.png"


def body(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def adapter(secret: str | None = WEBHOOK_SECRET, **extra: Any) -> Provider:
    fields: dict[str, Any] = {"base_url": BASE, "api_key": KEY, "webhook_secret": secret,
                              **extra}
    return ReplicateProvider.with_config(timeout=2, **fields)


def spec(model: str, aspect: str = "16:9", images: list[str] | None = None) -> GenerationSpec:
    info = get_model(model)
    return GenerationSpec(model=model, prompt="a red fox", aspect_ratio=aspect,
                          duration_seconds=info.default_duration, image_urls=images or [])


def sent(mocked: responses.RequestsMock, i: int = 0) -> Any:
    raw = mocked.calls[i].request.body
    return json.loads(raw if raw is not None else b"null")


# --- submit ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("model", "aspect", "images", "expected"), [
    ("google/veo-3", "9:16", [],
     {"prompt": "a red fox", "duration": 8, "aspect_ratio": "9:16"}),
    ("google/veo-3", "16:9", [IMAGE],
     {"prompt": "a red fox", "duration": 8, "aspect_ratio": "16:9", "image": IMAGE}),
    ("minimax/hailuo-02", "16:9", [],
     {"prompt": "a red fox", "duration": 6, "resolution": "768p"}),
    ("minimax/hailuo-02", "16:9", [IMAGE],
     {"prompt": "a red fox", "duration": 6, "resolution": "768p",
      "first_frame_image": IMAGE}),
    ("kwaivgi/kling-v2.1", "16:9", [IMAGE],
     {"prompt": "a red fox", "duration": 5, "mode": "standard", "start_image": IMAGE}),
])
def test_submit_sends_the_models_own_input(mocked: responses.RequestsMock, model: str,
                                          aspect: str, images: list[str],
                                          expected: dict[str, Any]) -> None:
    mocked.post(f"{BASE}/models/{model}/predictions", json=body("starting"), status=201)
    task = adapter().submit(get_model(model), spec(model, aspect, images), None)
    assert task == body("starting")["id"]
    assert mocked.calls[0].request.headers["Authorization"] == f"Bearer {KEY}"
    assert sent(mocked) == {"input": expected}


def test_submit_asks_for_the_completed_webhook(mocked: responses.RequestsMock) -> None:
    mocked.post(f"{BASE}/models/google/veo-3/predictions", json=body("starting"), status=201)
    adapter().submit(get_model("google/veo-3"), spec("google/veo-3"),
                     "https://us.example/callbacks/replicate")
    assert sent(mocked)["webhook"] == "https://us.example/callbacks/replicate"
    assert sent(mocked)["webhook_events_filter"] == ["completed"]


def test_the_token_may_come_as_replicate_api_token(mocked: responses.RequestsMock) -> None:
    mocked.post(f"{BASE}/models/google/veo-3/predictions", json=body("starting"), status=201)
    provider = ReplicateProvider.with_config(base_url=BASE, api_token="r8_token")
    provider.submit(get_model("google/veo-3"), spec("google/veo-3"), None)
    assert mocked.calls[0].request.headers["Authorization"] == "Bearer r8_token"


def test_kling_needs_a_start_image() -> None:
    assert get_model("kwaivgi/kling-v2.1").min_images == 1
    assert get_model("replicate:google/veo-3").family == "replicate"


@pytest.mark.parametrize(("status", "payload", "expected", "code"), [
    (401, body("error_unauthenticated"), PermanentError, ErrorCode.PROVIDER_AUTH_FAILED),
    (402, body("error_insufficient_credit"), PermanentError, ErrorCode.INSUFFICIENT_CREDITS),
    (429, body("error_throttled"), RateLimitedError, None),
    (422, body("error_invalid_input"), PermanentError, ErrorCode.VALIDATION_FAILED),
    (422, body("error_flagged_input"), PermanentError, ErrorCode.MODERATION_REJECTED),
    (404, body("error_not_found"), PermanentError, ErrorCode.VALIDATION_FAILED),
    (500, "Internal Server Error", SubmitOutcomeUnknownError, None),
    (502, "<html>Bad Gateway</html>", SubmitOutcomeUnknownError, None),
    (201, "not json{{", SubmitOutcomeUnknownError, None),
    (201, {"status": "starting"}, SubmitOutcomeUnknownError, None),
], ids=["401", "402", "429", "422", "422-flagged", "404-model", "500", "502", "garbled",
        "no-id"])
def test_submit_error_mapping(mocked: responses.RequestsMock, status: int, payload: Any,
                              expected: type[VideopollError], code: ErrorCode | None) -> None:
    kwargs: dict[str, Any] = ({"json": payload} if not isinstance(payload, str)
                              else {"body": payload})
    mocked.post(f"{BASE}/models/google/veo-3/predictions", status=status, **kwargs)
    with pytest.raises(expected) as info:
        adapter().submit(get_model("google/veo-3"), spec("google/veo-3"), None)
    if code is not None:
        assert isinstance(info.value, PermanentError) and info.value.code == code


@pytest.mark.parametrize(("header", "expected"), [(None, 30.0), ("5", 5.0)],
                         ids=["from-the-body", "retry-after-wins"])
def test_a_throttled_answer_says_how_long_to_wait(mocked: responses.RequestsMock,
                                                  header: str | None, expected: float) -> None:
    mocked.post(f"{BASE}/models/google/veo-3/predictions", status=429,
                json=body("error_throttled"),  # [DOC] "resets in ~30s"
                headers={"Retry-After": header} if header else {})
    with pytest.raises(RateLimitedError) as info:
        adapter().submit(get_model("google/veo-3"), spec("google/veo-3"), None)
    assert info.value.retry_after == expected


# --- status ----------------------------------------------------------------------------------
def test_fetch_and_cancel_requests(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{BASE}/predictions/abc%2Fd", json=body("processing"))
    mocked.post(f"{BASE}/predictions/abc/cancel", json=body("canceled"))
    provider = adapter()
    assert provider.fetch("abc/d").body == body("processing")
    assert provider.cancel("abc") is True
    assert mocked.calls[1].request.headers["Authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize("answer", [{"status": 404, "json": body("error_not_found")},
                                    {"body": requests.ConnectionError("refused")}],
                         ids=["404", "connection-refused"])
def test_a_cancel_that_fails_says_no(mocked: responses.RequestsMock,
                                     answer: dict[str, Any]) -> None:
    mocked.post(f"{BASE}/predictions/abc/cancel", **answer)
    assert adapter().cancel("abc") is False


DELIVERY = "https://replicate.delivery/xezq/abc"


@pytest.mark.parametrize(("fixture", "state", "urls", "code"), [
    pytest.param("starting", Q, [], None, id="[COMPOSED] starting"),
    pytest.param("processing", R, [], None, id="[COMPOSED] processing"),
    pytest.param("succeeded_url", S, [f"{DELIVERY}/tmpk3d8.mp4"], None,
                 id="[COMPOSED] succeeded, output a URL"),
    pytest.param("succeeded_list", S, [f"{DELIVERY}/out-0.mp4", f"{DELIVERY}/out-1.mp4"], None,
                 id="[COMPOSED] succeeded, output a list"),
    pytest.param("succeeded_object", S, [f"{DELIVERY}/video.mp4"], None,
                 id="[COMPOSED] succeeded, output an object"),
    pytest.param("doc_succeeded_text_output", S, [], None,
                 id="[DOC] succeeded with a text output: no URL"),
    pytest.param("succeeded_no_output", S, [], None, id="[COMPOSED] succeeded, output null"),
    pytest.param("succeeded_data_removed", F, [], ErrorCode.OUTPUT_MISSING,
                 id="[COMPOSED] data_removed after an hour"),
    pytest.param("failed_nsfw", F, [], ErrorCode.MODERATION_REJECTED, id="[3P] NSFW"),
    pytest.param("failed_sensitive_e005", F, [], ErrorCode.MODERATION_REJECTED,
                 id="[3P] flagged as sensitive E005"),
    pytest.param("failed_oom_e1001", F, [], ErrorCode.UNKNOWN_PROVIDER_ERROR,
                 id="[DOC] E1001 out of memory"),
    pytest.param("failed_unknown_e1000", F, [], ErrorCode.UNKNOWN_PROVIDER_ERROR,
                 id="[DOC] E1000 unknown"),
    pytest.param("failed_timeout", F, [], ErrorCode.PROVIDER_TIMEOUT,
                 id="[COMPOSED] 30-minute timeout"),
    pytest.param("failed_image_fetch", F, [], ErrorCode.ASSET_FETCH_FAILED,
                 id="[COMPOSED] input image not downloadable"),
    pytest.param("failed_error_null", F, [], ErrorCode.UNKNOWN_PROVIDER_ERROR,
                 id="[COMPOSED] failed, error null"),
    pytest.param("canceled", F, [], ErrorCode.CANCELED, id="[DOC] canceled"),
    pytest.param("aborted", F, [], ErrorCode.PROVIDER_TIMEOUT, id="[DOC] aborted"),
    pytest.param("status_undocumented", R, [], None, id="[COMPOSED] undocumented status"),
])
def test_recorded_predictions(fixture: str, state: PollState, urls: list[str],
                              code: ErrorCode | None) -> None:
    result = adapter().normalize(ProviderResponse(http_status=200, body=body(fixture)))
    assert (result.state, result.output_urls, result.error_code) == (state, urls, code)
    assert result.parser == "replicate_prediction"
    if state is F:
        assert result.provider_message


@pytest.mark.parametrize(("status", "payload", "expected"), [
    (401, body("error_unauthenticated"), PermanentError),
    (404, body("error_not_found"), TaskNotFoundError),
    (429, body("error_throttled"), RateLimitedError),
    (500, None, TransientError),
    (200, None, TransientError),
    (200, {"code": 200, "msg": "success", "data": {"taskId": "t", "state": "success",
           "resultJson": "{\"resultUrls\":[\"https://kie.example/v.mp4\"]}"}}, TransientError),
    (200, {"status": "succeeded", "output": "https://x.example/v.mp4"}, TransientError),
], ids=["401", "404", "429", "500", "not-json", "kie-shaped", "no-id"])
def test_status_faults(status: int, payload: Any, expected: type[VideopollError]) -> None:
    resp = ProviderResponse(http_status=status, body=payload, text_sample=json.dumps(payload))
    with pytest.raises(expected) as info:
        adapter().normalize(resp)
    if isinstance(info.value, RateLimitedError):
        assert info.value.retry_after == 30.0


# --- webhooks --------------------------------------------------------------------------------
def webhook(name: str = "succeeded_url", secret: str = WEBHOOK_SECRET,
            now: float | None = None, headers: dict[str, str] | None = None,
            ) -> CallbackRequest:
    raw = json.dumps(body(name)).encode()
    sent_headers = signed_headers(secret, raw, now) if headers is None else headers
    return CallbackRequest(raw=raw, body=json.loads(raw), headers=sent_headers)


def test_a_signed_webhook_names_the_prediction() -> None:
    assert adapter().callback(webhook()).task_id == body("succeeded_url")["id"]


def test_a_space_delimited_signature_list_verifies() -> None:
    raw = json.dumps(body("succeeded_url")).encode()
    headers = signed_headers(WEBHOOK_SECRET, raw)
    headers["webhook-signature"] = f"v1,bm9wZQ== {headers['webhook-signature']}"
    req = CallbackRequest(raw=raw, body=json.loads(raw), headers=headers)
    assert adapter().callback(req).task_id == body("succeeded_url")["id"]


@pytest.mark.parametrize(("req", "secret", "status"), [
    (lambda: webhook(secret="whsec_" + "QUJD" * 8), WEBHOOK_SECRET, 401),
    (lambda: webhook(now=time.time() - 301), WEBHOOK_SECRET, 401),
    (lambda: webhook(headers={}), WEBHOOK_SECRET, 401),
    (lambda: webhook(headers={"webhook-id": "m", "webhook-timestamp": str(int(time.time())),
                              "webhook-signature": "v1,not base64!"}), WEBHOOK_SECRET, 401),
    (lambda: webhook(), None, 401),
    (lambda: webhook(), "not a secret!", 401),
    (lambda: webhook("error_not_found"), WEBHOOK_SECRET, 400),
], ids=["wrong-secret", "stale", "no-headers", "garbled-signature", "no-secret-configured",
        "bad-secret-configured", "no-id"])
def test_callbacks_that_are_refused(req: Any, secret: str | None, status: int) -> None:
    with pytest.raises(CallbackRejected) as info:
        adapter(secret=secret).callback(req())
    assert info.value.status == status


def test_the_callback_age_limit_is_the_configured_one() -> None:
    provider = ReplicateProvider(adapter().config, callback_max_age=30)
    with pytest.raises(CallbackRejected):
        provider.callback(webhook(now=time.time() - 60))


@pytest.mark.parametrize(("url", "auth"), [
    (f"{BASE}/files/abc", True),
    ("https://replicate.delivery/xezq/abc/v.mp4", False),
])
def test_download_headers_go_to_the_api_origin_only(url: str, auth: bool) -> None:
    expected = {"Authorization": f"Bearer {KEY}"} if auth else {}
    assert adapter().download_headers(url) == expected


# --- the fake --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fakes() -> Iterator[FakeProvider]:
    server = start_in_thread()
    yield server
    server.stop()


def test_the_fake_sends_the_completed_webhook_it_was_asked_for(fakes: FakeProvider) -> None:
    listener = Listener()
    fakes.state.callback_delay = 0.05
    try:
        provider = ReplicateProvider.with_config(
            **fakes.fake("replicate").config(fakes.server.base_url))
        task = provider.submit(get_model("google/veo-3"), spec("google/veo-3"),
                               f"{listener.url}/callbacks/replicate")
        deadline = time.monotonic() + 5
        while not listener.received and time.monotonic() < deadline:
            time.sleep(0.02)
        got = listener.received[0]
        req = CallbackRequest(raw=got.body, body=json.loads(got.body),
                              headers={k.lower(): v for k, v in got.headers.items()})
        assert provider.callback(req).task_id == task
        assert json.loads(got.body)["status"] == "succeeded"
    finally:
        fakes.state.callback_delay = 1.0
        listener.stop()


def test_the_fake_serves_the_default_webhook_secret(fakes: FakeProvider) -> None:
    provider = ReplicateProvider.with_config(
        **fakes.fake("replicate").config(fakes.server.base_url))
    answer = requests.get(f"{provider.base_url}/webhooks/default/secret",
                          headers=provider.headers(), timeout=5)
    assert answer.json() == {"key": WEBHOOK_SECRET}


def test_the_fake_wants_a_start_image_for_kling(fakes: FakeProvider) -> None:
    provider = ReplicateProvider.with_config(
        **fakes.fake("replicate").config(fakes.server.base_url))
    with pytest.raises(PermanentError):
        provider.submit(get_model("kwaivgi/kling-v2.1"), spec("kwaivgi/kling-v2.1"), None)
