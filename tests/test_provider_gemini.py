"""The Gemini API's Veo adapter: the request out (``responses``), the verdict on every recorded
answer shape (tests/fixtures/gemini), and its fake over real HTTP.

Fixture labels follow providers.md §5.1: [DOC] documented shape, [COMPOSED] written from the
documented field lists, [3P] seen in third-party integrations only.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import responses

from videopoll.errors import (
    CallbackRejected,
    PermanentError,
    RateLimitedError,
    SubmitOutcomeUnknownError,
    TaskNotFoundError,
    TransientError,
)
from videopoll.fake_provider import FakeProvider, start_in_thread
from videopoll.models import ErrorCode, GenerationSpec, PollState, ProviderResponse
from videopoll.providers import get_model
from videopoll.providers.base import CallbackRequest, Provider
from videopoll.providers.google import GeminiProvider
from videopoll.providers.google.operations import is_moderation
from videopoll.settings import Settings

BASE = "https://generativelanguage.test"
KEY = "gemini-secret"
FIXTURES = Path(__file__).parent / "fixtures" / "gemini"
OP = "models/veo-3.1-generate-preview/operations/abc"
SUBMIT = f"{BASE}/v1beta/models/veo-3.1-generate-preview:predictLongRunning"
IMAGE = "https://images.example/first.png"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 16

S, R, F = PollState.SUCCEEDED, PollState.RUNNING, PollState.FAILED


def adapter(**fields: Any) -> Provider:
    return GeminiProvider.with_config(**{"base_url": BASE, "api_key": KEY,
                                         "allow_private_images": True, **fields})


def spec(images: list[str] | None = None, duration: int = 8,
         aspect: str = "16:9") -> GenerationSpec:
    return GenerationSpec(model="veo-3.1-generate-preview", prompt="a red fox",
                          aspect_ratio=aspect, duration_seconds=duration,
                          image_urls=images or [])


def submit(provider: Provider, images: list[str] | None = None, **kw: Any) -> str:
    return provider.submit(get_model("veo-3.1-generate-preview"), spec(images, **kw), None)


def sent(call: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(call.request.body)
    return body


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


# --- submit ------------------------------------------------------------------------------

def test_a_text_submit_is_the_documented_request_and_the_task_is_the_operation_name(
    mocked: responses.RequestsMock
) -> None:
    mocked.post(SUBMIT, json={"name": OP})
    assert submit(adapter(), duration=6, aspect="9:16") == OP
    call = mocked.calls[0]
    assert call.request.headers["x-goog-api-key"] == KEY
    assert "Authorization" not in call.request.headers  # an API key, never a bearer token
    assert sent(call) == {"instances": [{"prompt": "a red fox"}], "parameters": {
        "aspectRatio": "9:16", "durationSeconds": "6", "resolution": "720p"}}


def test_images_go_inline_as_first_and_last_frame(mocked: responses.RequestsMock) -> None:
    mocked.get(IMAGE, body=PNG)
    mocked.get("https://images.example/last.jpg", body=JPEG)
    mocked.post(SUBMIT, json={"name": OP})
    submit(adapter(), [IMAGE, "https://images.example/last.jpg"])
    instance = sent(mocked.calls[2])["instances"][0]
    assert instance["image"] == {"bytesBase64Encoded": base64.b64encode(PNG).decode(),
                                 "mimeType": "image/png"}
    assert instance["lastFrame"] == {"bytesBase64Encoded": base64.b64encode(JPEG).decode(),
                                     "mimeType": "image/jpeg"}


@pytest.mark.parametrize(("status", "body"), [(404, b"gone"), (200, b"<html>not an image")])
def test_an_image_that_cannot_be_used_fails_before_anything_is_sent(
    mocked: responses.RequestsMock, status: int, body: bytes
) -> None:
    mocked.get(IMAGE, body=body, status=status)
    with pytest.raises(PermanentError) as info:
        submit(adapter(), [IMAGE])
    assert info.value.code == ErrorCode.ASSET_FETCH_FAILED
    assert len(mocked.calls) == 1  # no predictLongRunning: nothing paid


def test_an_image_fetch_fault_is_transient_and_sends_nothing(
    mocked: responses.RequestsMock
) -> None:
    mocked.get(IMAGE, body=requests.ConnectionError("refused"))
    with pytest.raises(TransientError) as info:
        submit(adapter(), [IMAGE])
    assert type(info.value) is TransientError


def test_no_callback_url_is_sent_the_api_has_none(mocked: responses.RequestsMock) -> None:
    mocked.post(SUBMIT, json={"name": OP})
    adapter().submit(get_model("veo-3.1-generate-preview"), spec(), "https://us.example/cb")
    assert "https://us.example/cb" not in json.dumps(sent(mocked.calls[0]))


@pytest.mark.parametrize(("fixture_name", "status", "code"), [
    ("http_400_api_key_invalid", 400, ErrorCode.PROVIDER_AUTH_FAILED),  # [3P]
    ("http_403_permission_denied", 403, ErrorCode.PROVIDER_AUTH_FAILED),  # [3P]
    ("http_400_invalid_argument", 400, ErrorCode.VALIDATION_FAILED),  # [COMPOSED]
    ("http_400_safety", 400, ErrorCode.MODERATION_REJECTED),  # [COMPOSED]
    ("http_404_model_retired", 404, ErrorCode.VALIDATION_FAILED),  # [3P] lifecycle notice
])
def test_submit_refusals_are_permanent(mocked: responses.RequestsMock, fixture_name: str,
                                       status: int, code: ErrorCode) -> None:
    mocked.post(SUBMIT, json=fixture(fixture_name), status=status)
    with pytest.raises(PermanentError) as info:
        submit(adapter())
    assert info.value.code == code


def test_submit_402_is_insufficient_credits(mocked: responses.RequestsMock) -> None:
    mocked.post(SUBMIT, json={"error": {"code": 402, "message": "billing"}}, status=402)
    with pytest.raises(PermanentError) as info:
        submit(adapter())
    assert info.value.code == ErrorCode.INSUFFICIENT_CREDITS


def test_submit_429_resource_exhausted_is_rate_limited(mocked: responses.RequestsMock) -> None:
    mocked.post(SUBMIT, json=fixture("http_429_resource_exhausted"), status=429)
    with pytest.raises(RateLimitedError):
        submit(adapter())


@pytest.mark.parametrize(("status", "body"), [
    (500, {"error": {"code": 500, "status": "INTERNAL"}}), (503, {"error": {"code": 503}}),
    (200, "not json{{"), (200, {"done": False}), (200, {"name": ""}), (200, [OP]),
])
def test_an_answer_that_may_hide_a_task_leaves_the_outcome_unknown(
    mocked: responses.RequestsMock, status: int, body: Any
) -> None:
    mocked.post(SUBMIT, body=body if isinstance(body, str) else json.dumps(body), status=status)
    with pytest.raises(SubmitOutcomeUnknownError):
        submit(adapter())


# --- status ------------------------------------------------------------------------------

def test_fetch_gets_the_operation_by_its_name_with_the_key(
    mocked: responses.RequestsMock
) -> None:
    mocked.get(f"{BASE}/v1beta/{OP}", json={"name": OP})
    resp = adapter().fetch(OP)
    assert (resp.http_status, resp.body) == (200, {"name": OP})
    assert mocked.calls[0].request.headers["x-goog-api-key"] == KEY


G = "https://generativelanguage.googleapis.com/v1beta/files/xyz:download?alt=media"


@pytest.mark.parametrize(("name", "state", "url", "code"), [
    pytest.param("pending_name_only", R, None, None, id="COMPOSED-pending_name_only"),
    pytest.param("pending_done_false", R, None, None, id="COMPOSED-pending_done_false"),
    pytest.param("success", S, G, None, id="COMPOSED-doc_example-success"),
    pytest.param("success_two_samples", S, G, None, id="COMPOSED-success_two_samples"),
    pytest.param("success_sdk_spelling", S, G, None, id="3P-success_sdk_spelling"),
    pytest.param("success_partly_filtered", S, G, None, id="COMPOSED-success_partly_filtered"),
    pytest.param("done_no_samples", S, None, None, id="COMPOSED-done_no_samples"),
    pytest.param("done_sample_without_uri", S, None, None, id="COMPOSED-sample_without_uri"),
    pytest.param("rai_filtered", F, None, ErrorCode.MODERATION_REJECTED,
                 id="DOC-doc_example-rai_filtered"),
    pytest.param("rai_filtered_count_as_string", F, None, ErrorCode.MODERATION_REJECTED,
                 id="COMPOSED-rai_count_as_string"),
    pytest.param("rai_filtered_reasons_only", F, None, ErrorCode.MODERATION_REJECTED,
                 id="COMPOSED-rai_reasons_only"),
    pytest.param("error_deadline_exceeded", F, None, ErrorCode.PROVIDER_TIMEOUT,
                 id="3P-error_deadline_exceeded"),
    pytest.param("error_status_string", F, None, ErrorCode.PROVIDER_TIMEOUT,
                 id="COMPOSED-error_status_string"),
    pytest.param("error_invalid_argument", F, None, ErrorCode.VALIDATION_FAILED,
                 id="DOC-error_invalid_argument"),
    pytest.param("error_resource_exhausted", F, None, ErrorCode.PROVIDER_RATE_LIMITED,
                 id="COMPOSED-error_resource_exhausted"),
    pytest.param("error_person_generation", F, None, ErrorCode.MODERATION_REJECTED,
                 id="DOC-error_person_generation"),
    pytest.param("error_internal", F, None, ErrorCode.UNKNOWN_PROVIDER_ERROR,
                 id="COMPOSED-error_internal"),
    pytest.param("error_cancelled", F, None, ErrorCode.CANCELED, id="COMPOSED-error_cancelled"),
    pytest.param("odd_done_value", R, None, None, id="COMPOSED-odd_done_value"),
])
def test_every_recorded_operation_shape(name: str, state: PollState, url: str | None,
                                        code: ErrorCode | None) -> None:
    result = adapter().normalize(ProviderResponse(http_status=200, body=fixture(name)))
    assert result.state is state
    assert (result.output_urls[0] if result.output_urls else None) == url
    assert result.error_code == code
    if state is F:
        assert result.provider_message  # the provider's own words reach the job


@pytest.mark.parametrize(("name", "status", "error"), [
    ("http_429_resource_exhausted", 429, RateLimitedError),  # [3P]
    ("http_404_not_found", 404, TaskNotFoundError),  # [COMPOSED]
    ("http_500_internal", 500, TransientError),  # [COMPOSED]
    ("http_503_unavailable", 503, TransientError),  # [COMPOSED]
    ("http_400_invalid_argument", 400, TransientError),  # a fault of the call, not the task
])
def test_status_http_errors(name: str, status: int, error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        adapter().normalize(ProviderResponse(http_status=status, body=fixture(name)))
    if error is TransientError:
        assert type(info.value) is TransientError


@pytest.mark.parametrize(("name", "status"), [("http_403_permission_denied", 403),
                                              ("http_400_api_key_invalid", 400)])
def test_status_auth_failures_are_permanent(name: str, status: int) -> None:
    with pytest.raises(PermanentError) as info:
        adapter().normalize(ProviderResponse(http_status=status, body=fixture(name)))
    assert info.value.code == ErrorCode.PROVIDER_AUTH_FAILED


@pytest.mark.parametrize("body", [None, {}, {"code": 200, "msg": "success", "data": {
    "taskId": "t", "successFlag": 1, "response": {"resultUrls": ["https://k.example/v.mp4"]}}},
    {"name": 7, "done": None}, {"done": True, "response": []}, {"error": "boom", "name": OP}])
def test_odd_bodies_are_typed_faults_or_results_never_a_crash(body: Any) -> None:
    try:
        result = adapter().normalize(ProviderResponse(http_status=200, body=body))
    except TransientError:
        return
    assert "https://k.example/v.mp4" not in result.output_urls


def test_moderation_texts() -> None:
    assert is_moderation("Person generation is not allowed without approval")
    assert is_moderation("violates Google's Responsible AI practices")
    assert not is_moderation("durationSeconds must be 4, 6 or 8")


# --- downloads, callbacks, cancel, settings ----------------------------------------------

def test_download_headers_only_on_the_api_origin() -> None:
    provider = adapter()
    assert provider.download_headers(f"{BASE}/v1beta/files/x:download?alt=media") == {
        "x-goog-api-key": KEY}
    for other in ("https://storage.example/x.mp4", "http://generativelanguage.test/x",
                  "https://generativelanguage.test:8443/x"):
        assert provider.download_headers(other) == {}


def test_no_callbacks_and_no_cancel() -> None:
    provider = adapter()
    assert not provider.pushes_callbacks and not provider.can_cancel
    assert provider.cancel(OP) is False
    with pytest.raises(CallbackRejected) as info:
        provider.callback(CallbackRequest(raw=b"{}", body={}, headers={}))
    assert info.value.status == 404


def test_models_and_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    fast = get_model("veo-3.1-fast-generate-preview")
    assert (fast.family, fast.durations, fast.aspect_ratios, fast.max_images) == (
        "gemini", (4, 6, 8), ("16:9", "9:16"), 2)
    monkeypatch.setenv("GEMINI_API_KEY", "from-env")
    provider = GeminiProvider(Settings().provider_config("gemini", GeminiProvider.config_class))
    assert provider.api_key == "from-env"
    assert provider.base_url == "https://generativelanguage.googleapis.com"


# --- the fake, over real HTTP ------------------------------------------------------------

@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeProvider]:
    server = start_in_thread()
    yield server
    server.stop()


def test_the_fake_wants_the_key_everywhere(fake_server: FakeProvider) -> None:
    config = fake_server.fake("gemini").config(fake_server.server.base_url)
    provider = GeminiProvider.with_config(**config)
    task = submit(provider)
    assert task.startswith("models/veo-3.1-generate-preview/operations/gemini_")
    base = config["base_url"]
    assert requests.get(f"{base}/v1beta/{task}", timeout=5).status_code == 403
    assert requests.get(f"{base}/v1beta/{task}", headers={"x-goog-api-key": "wrong"},
                        timeout=5).json()["error"]["status"] == "INVALID_ARGUMENT"
    download = f"{base}/v1beta/files/{task.rsplit('/', 1)[1]}:download?alt=media"
    assert requests.get(download, timeout=5).status_code == 403
    answer = requests.get(download, headers=provider.download_headers(download), timeout=5)
    assert answer.status_code == 200 and b"ftyp" in answer.content[:64]
