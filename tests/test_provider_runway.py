"""Runway direct: the requests out, the faults back, every recorded task shape, cancel.

Fixtures in ``tests/fixtures/runway``: providers.md §8's three examples are themselves
[COMPOSED] from the SDK field list (running, succeeded, failed_safety_input_text); the other
states and failure codes are [COMPOSED] from the SDK's status enum and the task-failures
page, with [3P] codes (``INPUT_PREPROCESSING.SAFETY.*``, ``INTERNAL.BAD_OUTPUT.CODE01``,
``ASSET.INVALID``, ``THIRD_PARTY.UNAVAILABLE``); error bodies follow the [DOC] errors page.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
import responses

from videopoll.errors import (
    PermanentError,
    RateLimitedError,
    SubmitOutcomeUnknownError,
    TaskNotFoundError,
    TransientError,
)
from videopoll.models import ErrorCode, GenerationSpec, PollState, ProviderResponse
from videopoll.providers import get_model, validate_options
from videopoll.providers.base import Provider
from videopoll.providers.runway import RunwayProvider

BASE = "https://api.runway.test/v1"
KEY = "key_runway_secret"
TASK = "17f20503-6c24-4c16-946b-35dbbce2af2f"
FIXTURES = Path(__file__).parent / "fixtures" / "runway"
IMAGE = "https://img.example/a.png"
OUT = "https://dnznrvs05pmza.cloudfront.net/17f2/output.mp4"
S, R, Q, F = PollState.SUCCEEDED, PollState.RUNNING, PollState.QUEUED, PollState.FAILED


def body(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def adapter() -> Provider:
    return RunwayProvider.with_config(timeout=2, base_url=BASE, api_key=KEY)


def spec(model: str, images: list[str] | None = None, aspect: str = "16:9",
         duration: int = 5) -> GenerationSpec:
    return GenerationSpec(model=model, prompt="a red fox", aspect_ratio=aspect,
                          duration_seconds=duration, image_urls=images or [])


# --- submit ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("model", "images", "aspect", "path", "expected"), [
    ("runway-gen4.5", [], "9:16", "/text_to_video",
     {"model": "gen4.5", "promptText": "a red fox", "ratio": "720:1280", "duration": 5}),
    ("runway-gen4.5", [IMAGE], "16:9", "/image_to_video",
     {"model": "gen4.5", "promptText": "a red fox", "ratio": "1280:720", "duration": 5,
      "promptImage": IMAGE}),
    ("runway-gen4", [IMAGE], "1:1", "/image_to_video",
     {"model": "gen4_turbo", "promptText": "a red fox", "ratio": "960:960", "duration": 5,
      "promptImage": IMAGE}),
    ("runway-gen4", [IMAGE], "21:9", "/image_to_video",
     {"model": "gen4_turbo", "promptText": "a red fox", "ratio": "1584:672", "duration": 5,
      "promptImage": IMAGE}),
])
def test_submit_sends_the_documented_body_and_headers(
    mocked: responses.RequestsMock, model: str, images: list[str], aspect: str, path: str,
    expected: dict[str, Any],
) -> None:
    mocked.post(BASE + path, json={"id": TASK})
    assert adapter().submit(get_model(model), spec(model, images, aspect),
                            "https://me/cb") == TASK  # the callback URL has nowhere to go
    request = mocked.calls[0].request
    assert json.loads(request.body or b"{}") == expected
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["X-Runway-Version"] == "2024-11-06"


def test_gen4_turbo_is_image_to_video_only(mocked: responses.RequestsMock) -> None:
    model = get_model("runway-gen4")
    assert validate_options(model, "16:9", 5, 0) == [
        ("imageUrls", "runway-gen4 needs at least 1 image")]
    with pytest.raises(PermanentError) as info:  # and the adapter itself refuses, unsent
        adapter().submit(model, spec("runway-gen4"), None)
    assert info.value.code == ErrorCode.VALIDATION_FAILED and not mocked.calls


@pytest.mark.parametrize(("status", "fixture", "raises", "code"), [
    (400, "error_400", PermanentError, ErrorCode.VALIDATION_FAILED),
    (400, "error_400_credits", PermanentError, ErrorCode.INSUFFICIENT_CREDITS),
    (400, "error_400_safety", PermanentError, ErrorCode.MODERATION_REJECTED),
    (401, "error_401", PermanentError, ErrorCode.PROVIDER_AUTH_FAILED),
    (404, "error_404", PermanentError, ErrorCode.VALIDATION_FAILED),  # no such endpoint/model
    (405, "error_400", PermanentError, ErrorCode.UNKNOWN_PROVIDER_ERROR),
    (429, "error_429", RateLimitedError, None),  # the one proof it was not accepted
    (500, None, SubmitOutcomeUnknownError, None),
    (502, None, SubmitOutcomeUnknownError, None),  # "shedding load": not proof either way
    (503, None, SubmitOutcomeUnknownError, None),
    (504, None, SubmitOutcomeUnknownError, None),
    (200, None, SubmitOutcomeUnknownError, None),  # a garbled answer to an accepted submit
])
def test_submit_error_mapping(
    mocked: responses.RequestsMock, status: int, fixture: str | None, raises: type[Exception],
    code: ErrorCode | None,
) -> None:
    text = json.dumps(body(fixture)) if fixture else "<html>upstream</html>"
    mocked.post(BASE + "/text_to_video", body=text, status=status)
    with pytest.raises(raises) as info:
        adapter().submit(get_model("runway-gen4.5"), spec("runway-gen4.5"), None)
    assert type(info.value) is raises
    if code is not None:
        assert isinstance(info.value, PermanentError) and info.value.code == code


@pytest.mark.parametrize("answer", [{}, {"id": ""}, {"id": None}, {"task": TASK}])
def test_accepted_without_an_id_is_outcome_unknown(
    mocked: responses.RequestsMock, answer: dict[str, Any],
) -> None:
    mocked.post(BASE + "/text_to_video", json=answer)
    with pytest.raises(SubmitOutcomeUnknownError):
        adapter().submit(get_model("runway-gen4.5"), spec("runway-gen4.5"), None)


# --- fetch and normalize ------------------------------------------------------------------------
def test_fetch_reads_the_task_with_the_version_header(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{BASE}/tasks/{TASK}", json=body("running"))
    resp = adapter().fetch(TASK)
    assert resp.body == body("running")
    assert mocked.calls[0].request.headers["X-Runway-Version"] == "2024-11-06"


@pytest.mark.parametrize(("fixture", "state", "url", "code", "progress"), [
    ("pending", Q, None, None, None),
    ("throttled", Q, None, None, None),  # waiting for our other jobs: queued, not failed
    ("running", R, None, None, 42),
    ("running_no_progress", R, None, None, None),
    ("running_progress_string", R, None, None, 100),
    ("succeeded", S, OUT, None, 100),
    ("succeeded_no_output", S, None, None, 100),  # the missing-output budget ends it
    ("failed_safety_input_text", F, None, ErrorCode.MODERATION_REJECTED, None),
    ("failed_safety_output", F, None, ErrorCode.MODERATION_REJECTED, None),
    ("failed_preprocessing_safety", F, None, ErrorCode.MODERATION_REJECTED, None),
    ("failed_bad_output", F, None, ErrorCode.UNKNOWN_PROVIDER_ERROR, None),
    ("failed_asset_invalid", F, None, ErrorCode.ASSET_FETCH_FAILED, None),
    ("failed_third_party", F, None, ErrorCode.UNKNOWN_PROVIDER_ERROR, None),
    ("failed_no_code", F, None, ErrorCode.UNKNOWN_PROVIDER_ERROR, None),
    ("cancelled", F, None, ErrorCode.CANCELED, None),
    ("undocumented_status", R, None, None, None),  # unknown: running until the deadline
])
def test_recorded_shapes(fixture: str, state: PollState, url: str | None,
                         code: ErrorCode | None, progress: int | None) -> None:
    got = adapter().normalize(ProviderResponse(http_status=200, body=body(fixture)))
    assert got.state is state
    assert (got.output_urls[0] if got.output_urls else None) == url
    assert (got.error_code, got.progress) == (code, progress)
    if state is F:
        assert got.provider_message and got.parser == "runway_task"


def test_the_failure_code_and_text_reach_the_message() -> None:
    got = adapter().normalize(ProviderResponse(http_status=200,
                                               body=body("failed_safety_input_text")))
    assert got.provider_message == ("SAFETY.INPUT.TEXT Your prompt did not pass our content "
                                    "moderation.")


@pytest.mark.parametrize(("status", "text", "raises"), [
    (401, json.dumps(body("error_401")), PermanentError),
    (404, json.dumps(body("error_404")), TaskNotFoundError),
    (429, json.dumps(body("error_429")), RateLimitedError),
    (500, "{}", TransientError),
    (502, "<html>Bad Gateway</html>", TransientError),
    (503, "<html>shedding load</html>", TransientError),
    (200, "not json{{", TransientError),
])
def test_status_faults(mocked: responses.RequestsMock, status: int, text: str,
                       raises: type[Exception]) -> None:
    mocked.get(f"{BASE}/tasks/{TASK}", body=text, status=status)
    provider = adapter()
    with pytest.raises(raises) as info:
        provider.normalize(provider.fetch(TASK))
    assert type(info.value) is raises
    if raises is PermanentError:
        assert isinstance(info.value, PermanentError)
        assert info.value.code == ErrorCode.PROVIDER_AUTH_FAILED


def test_a_kie_shaped_body_is_not_a_runway_success() -> None:
    kie = {"code": 200, "msg": "success", "data": {"taskId": "t", "successFlag": 1,
                                                    "response": {"resultUrls": ["x.mp4"]}}}
    with pytest.raises(TransientError):
        adapter().normalize(ProviderResponse(http_status=200, body=kie))


def test_ids_sit_in_one_path_segment(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{BASE}/tasks/a%2Fb%3Fc", json=body("pending"))
    assert adapter().normalize(adapter().fetch("a/b?c")).state is Q


# --- cancel, downloads ----------------------------------------------------------------------
@pytest.mark.parametrize(("status", "ok"), [(204, True), (200, True), (404, False)])
def test_cancel_deletes_the_task(mocked: responses.RequestsMock, status: int, ok: bool) -> None:
    mocked.delete(f"{BASE}/tasks/{TASK}", status=status)
    assert adapter().cancel(TASK) is ok
    request = mocked.calls[0].request
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["X-Runway-Version"] == "2024-11-06"


def test_cancel_is_best_effort(mocked: responses.RequestsMock) -> None:
    mocked.delete(f"{BASE}/tasks/{TASK}", body=requests.ConnectionError("refused"))
    assert adapter().cancel(TASK) is False


def test_download_headers_only_for_runway_s_own_origin() -> None:
    provider = adapter()
    assert provider.download_headers(OUT) == {}  # pre-signed CDN links need no key
    assert provider.download_headers("https://api.runway.test/v1/files/x.mp4") == {
        "Authorization": f"Bearer {KEY}", "X-Runway-Version": "2024-11-06"}


def test_runway_does_not_push() -> None:
    assert RunwayProvider.pushes_callbacks is False and RunwayProvider.can_cancel is True
