"""BytePlus ModelArk Seedance: the request out, the error codes back, every shape, cancel.

Fixtures in ``tests/fixtures/ark``: ``task_succeeded`` is providers.md §9.2's success example
([3P] mirror of the official page); the other task states are [COMPOSED] from the SDK's
task fields; the error objects are [COMPOSED] from the codes §9.2 lists ([3P], citing Ark's
error-code page) in the ``{"error": {"code", "message"}}`` shape.
"""

from __future__ import annotations

import json

import pytest
import requests
import responses

from tests.rest_cases import (
    F,
    Q,
    R,
    S,
    against_fake,
    answer,
    callback,
    expect,
    fixture,
    pushed,
    sent,
    spec,
    submit_fault,
)
from videopoll.errors import (
    CallbackRejected,
    PermanentError,
    RateLimitedError,
    SubmitOutcomeUnknownError,
    TaskNotFoundError,
    TransientError,
)
from videopoll.models import ErrorCode
from videopoll.providers import MODELS, get_model
from videopoll.providers.ark import ArkProvider
from videopoll.providers.base import Provider

BASE = "https://ark.test/api/v3"
TASKS = f"{BASE}/contents/generations/tasks"
KEY = "ark-test-key"


def adapter() -> Provider:
    return ArkProvider.with_config(base_url=BASE, api_key=KEY, timeout=2)


def test_the_byteplus_base_is_the_default_and_seedance_2_is_not_a_bare_name() -> None:
    assert ArkProvider.with_config().base_url == "https://ark.ap-southeast.bytepluses.com/api/v3"
    assert get_model("seedance-2").family == "kie_market"
    assert MODELS["ark:seedance-2"].remote_id == "doubao-seedance-2-0-260128"


@responses.activate
def test_a_text_submit_sends_the_content_list_and_the_callback() -> None:
    responses.post(TASKS, json={"id": "cgt-1"})
    task = adapter().submit(get_model("seedance-1.0-pro"),
                            spec("seedance-1.0-pro", aspect="9:16", seconds=10),
                            "https://us.example/callbacks/ark?token=t")
    assert task == "cgt-1"
    call = responses.calls[0]
    assert call.request.headers["Authorization"] == f"Bearer {KEY}"
    assert sent(call) == {
        "model": "seedance-1-0-pro-250528",
        "content": [{"type": "text", "text": "a red fox"}],
        "ratio": "9:16", "duration": 10, "resolution": "720p",
        "callback_url": "https://us.example/callbacks/ark?token=t"}


@responses.activate
def test_an_image_is_the_first_frame_and_lite_uses_its_image_to_video_id() -> None:
    responses.post(TASKS, json={"id": "cgt-2"})
    adapter().submit(get_model("seedance-1.0-lite"),
                     spec("seedance-1.0-lite", ["https://img/a.png"]), None)
    body = sent(responses.calls[0])
    assert body["model"] == "seedance-1-0-lite-i2v-250428" and "callback_url" not in body
    assert body["content"][1] == {"type": "image_url", "image_url": {"url": "https://img/a.png"},
                                  "role": "first_frame"}


@pytest.mark.parametrize(("status", "name", "fault", "code"), [
    (400, "error_input_text_sensitive", PermanentError, ErrorCode.MODERATION_REJECTED),
    (400, "error_invalid_parameter", PermanentError, ErrorCode.VALIDATION_FAILED),
    (401, "error_authentication", PermanentError, ErrorCode.PROVIDER_AUTH_FAILED),
    (403, "error_account_overdue", PermanentError, ErrorCode.INSUFFICIENT_CREDITS),
    (404, "error_model_not_open", PermanentError, ErrorCode.PROVIDER_AUTH_FAILED),
    (429, "error_rate_endpoint_rpm", RateLimitedError, None),
    (429, "error_quota_exceeded", RateLimitedError, None),
    (429, "error_server_overloaded", RateLimitedError, None),
    (429, "error_model_account_rpm", RateLimitedError, None),
    (402, None, PermanentError, ErrorCode.INSUFFICIENT_CREDITS),
    (500, None, SubmitOutcomeUnknownError, None),
    (504, None, SubmitOutcomeUnknownError, None),
    (200, None, SubmitOutcomeUnknownError, None),  # accepted without an id
])
def test_submit_faults_follow_the_error_code_first(
    status: int, name: str | None, fault: type, code: ErrorCode | None
) -> None:
    body = fixture("ark", name) if name else {"error": {"code": "InternalServiceError"}}
    error = submit_fault(adapter(), "seedance-1.0-pro", TASKS, status, body)
    assert isinstance(error, fault)
    assert code is None or (isinstance(error, PermanentError) and error.code == code)


def test_a_garbled_accepted_submit_may_have_made_a_task() -> None:
    error = submit_fault(adapter(), "seedance-1.0-pro", TASKS, 200, text="<html>")
    assert isinstance(error, SubmitOutcomeUnknownError)


@responses.activate
def test_fetch_reads_one_task_with_its_id_quoted() -> None:
    responses.get(f"{TASKS}/cgt%2F1", json={"id": "cgt/1", "status": "queued"})
    assert adapter().fetch("cgt/1").body == {"id": "cgt/1", "status": "queued"}


VIDEO = ("https://ark-content-generation-ap-southeast-1.tos-ap-southeast-1.volces.com/"
         "xxx.mp4?X-Tos-Signature=abc")


@pytest.mark.parametrize(("name", "status", "expected"), [
    pytest.param("task_queued", 200, (Q, None, None), id="[COMPOSED] queued"),
    pytest.param("task_running", 200, (R, None, None), id="[COMPOSED] running"),
    pytest.param("task_succeeded", 200, (S, VIDEO, None), id="[3P] succeeded"),
    pytest.param("task_succeeded_no_url", 200, (S, None, None),
                 id="[COMPOSED] succeeded without content.video_url"),
    pytest.param("task_failed_output_moderation", 200,
                 (F, None, ErrorCode.MODERATION_REJECTED), id="[COMPOSED] output moderation"),
    pytest.param("task_failed_input_face", 200, (F, None, ErrorCode.MODERATION_REJECTED),
                 id="[COMPOSED] input image moderation (real face)"),
    pytest.param("task_failed_internal", 200, (F, None, ErrorCode.UNKNOWN_PROVIDER_ERROR),
                 id="[COMPOSED] internal error"),
    pytest.param("task_failed_invalid_parameter", 200, (F, None, ErrorCode.VALIDATION_FAILED),
                 id="[COMPOSED] InvalidParameter"),
    pytest.param("task_failed_legacy_reason", 200, (F, None, ErrorCode.MODERATION_REJECTED),
                 id="[COMPOSED] older SDK failure_reason text"),
    pytest.param("task_cancelled", 200, (F, None, ErrorCode.CANCELED), id="[COMPOSED] cancelled"),
    pytest.param("task_expired", 200, (F, None, ErrorCode.PROVIDER_TIMEOUT),
                 id="[COMPOSED] expired"),
    pytest.param("task_unknown_status", 200, (R, None, None),
                 id="[COMPOSED] undocumented status reads as running"),
    pytest.param("error_not_found", 404, TaskNotFoundError, id="[COMPOSED] 404 ResourceNotFound"),
    pytest.param("error_not_found", 400, TaskNotFoundError,
                 id="[COMPOSED] a NotFound code under another status"),
    pytest.param("error_authentication", 401, (PermanentError, ErrorCode.PROVIDER_AUTH_FAILED),
                 id="[COMPOSED] 401 AuthenticationError"),
    pytest.param("error_account_overdue", 403,
                 (PermanentError, ErrorCode.INSUFFICIENT_CREDITS), id="[COMPOSED] 403 overdue"),
    pytest.param("error_rate_endpoint_rpm", 429, RateLimitedError, id="[COMPOSED] 429 RPM"),
    pytest.param("error_invalid_parameter", 400, TransientError,
                 id="[COMPOSED] 400 while polling is a call fault"),
    pytest.param("task_queued", 500, TransientError, id="[COMPOSED] 500"),
])
def test_every_recorded_answer_gives_its_verdict(name: str, status: int,
                                                 expected: object) -> None:
    expect(adapter(), answer(status, fixture("ark", name)), expected)


def test_a_page_that_is_not_json_is_transient() -> None:
    expect(adapter(), answer(502, text="<html>Bad Gateway</html>"), TransientError)
    expect(adapter(), answer(200, text="not json{{"), TransientError)


@responses.activate
def test_cancel_deletes_a_queued_task() -> None:
    responses.delete(f"{TASKS}/cgt-1", json={})
    assert adapter().cancel("cgt-1") is True
    call = responses.calls[0]
    assert call.request.method == "DELETE"
    assert call.request.headers["Authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize("answer_kw", [
    {"json": fixture("ark", "error_invalid_parameter"), "status": 400},  # running: refused
    {"json": fixture("ark", "error_not_found"), "status": 404},
    {"body": requests.ConnectionError("refused")},
])
def test_cancel_is_best_effort_and_never_raises(answer_kw: dict[str, object]) -> None:
    with responses.RequestsMock() as mocked:
        mocked.delete(f"{TASKS}/cgt-1", **answer_kw)
        assert adapter().cancel("cgt-1") is False


def test_the_fake_cancels_only_a_queued_task() -> None:
    with against_fake("ark") as (fakes, provider):
        model = get_model("seedance-1.0-pro")
        queued = provider.submit(model, spec(model.name), None)
        running = provider.submit(model, spec(model.name), None)
        for _ in range(2):
            provider.fetch(running)
        assert provider.cancel(queued) is True and provider.cancel(running) is False
        assert fakes.stats()["canceled"] == [queued]
        assert provider.normalize(provider.fetch(queued)).error_code == ErrorCode.CANCELED


@pytest.mark.parametrize("body", [fixture("ark", "task_succeeded"), {"task_id": "cgt-x"},
                                  {"data": {"id": "cgt-x"}}])
def test_a_callback_names_its_task(body: dict[str, object]) -> None:
    assert callback(adapter(), body).task_id in ("cgt-x", body.get("id"))


@pytest.mark.parametrize("body", [{}, {"status": "succeeded"}, None, []])
def test_a_callback_that_names_no_task_is_a_400(body: object) -> None:
    with pytest.raises(CallbackRejected) as info:
        callback(adapter(), body)
    assert info.value.status == 400


def test_the_fake_pushes_the_task_object_and_it_names_the_submitted_task() -> None:
    task_id, received, provider = pushed("ark")
    assert received, "the fake sent no callback"
    assert not ArkProvider.signs_callbacks  # the URL token proves it (API layer)
    assert callback(provider, json.loads(received[0].body)).task_id == task_id


def test_the_key_goes_only_to_the_api_origin() -> None:
    assert adapter().download_headers(VIDEO) == {}
    assert adapter().download_headers(f"{BASE}/files/x.mp4") == {"Authorization": f"Bearer {KEY}"}


def test_the_fake_refuses_input_moderation_at_create_and_makes_no_task() -> None:
    with against_fake("ark") as (fakes, provider):
        model = get_model("seedance-1.0-pro")
        with pytest.raises(PermanentError) as info:
            provider.submit(model, spec(model.name).model_copy(
                update={"prompt": "a fox (nsfw-input)"}), None)
        assert info.value.code == ErrorCode.MODERATION_REJECTED
        assert fakes.stats()["submits"] == 0
