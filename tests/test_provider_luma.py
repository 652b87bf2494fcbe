"""Luma Dream Machine: the request out, the faults back, every recorded shape, callbacks.

Fixtures in ``tests/fixtures/luma`` are all [COMPOSED]: providers.md §9.1 takes the
generation object's fields from the SDK and gives no literal example of any state (its one
example is itself composed). The moderation wording is [UNCONFIRMED] (reported by users).
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
from videopoll.providers import get_model
from videopoll.providers.base import Provider
from videopoll.providers.luma import LumaProvider

BASE = "https://api.lumalabs.test/dream-machine/v1"
KEY = "luma-test-key"
CREATED = fixture("luma", "generation_queued")


def adapter() -> Provider:
    return LumaProvider.with_config(base_url=BASE, api_key=KEY, timeout=2)


@responses.activate
def test_a_text_submit_sends_the_documented_body_with_the_key_and_callback() -> None:
    responses.post(f"{BASE}/generations", json=CREATED, status=201)
    task = adapter().submit(get_model("ray-2"), spec("ray-2", aspect="9:16", seconds=9),
                            "https://us.example/callbacks/luma?token=t")
    assert task == CREATED["id"]
    call = responses.calls[0]
    assert call.request.headers["Authorization"] == f"Bearer {KEY}"
    assert sent(call) == {"prompt": "a red fox", "model": "ray-2", "aspect_ratio": "9:16",
                          "duration": "9s",
                          "callback_url": "https://us.example/callbacks/luma?token=t"}


@responses.activate
def test_images_become_start_and_end_keyframes_and_no_callback_is_sent_without_one() -> None:
    responses.post(f"{BASE}/generations", json=CREATED, status=201)
    adapter().submit(get_model("ray-flash-2"),
                     spec("ray-flash-2", ["https://img/a.png", "https://img/b.png"]), None)
    body = sent(responses.calls[0])
    assert body["model"] == "ray-flash-2" and "callback_url" not in body
    assert body["keyframes"] == {"frame0": {"type": "image", "url": "https://img/a.png"},
                                 "frame1": {"type": "image", "url": "https://img/b.png"}}


@pytest.mark.parametrize(("status", "name", "text", "fault", "code"), [
    (401, None, None, PermanentError, ErrorCode.PROVIDER_AUTH_FAILED),
    (402, None, None, PermanentError, ErrorCode.INSUFFICIENT_CREDITS),
    (400, "error_credits", None, PermanentError, ErrorCode.INSUFFICIENT_CREDITS),
    (400, "error_moderation", None, PermanentError, ErrorCode.MODERATION_REJECTED),
    (422, "error_validation", None, PermanentError, ErrorCode.VALIDATION_FAILED),
    (429, None, None, RateLimitedError, None),
    (500, None, None, SubmitOutcomeUnknownError, None),
    (502, None, "<html>Bad Gateway</html>", SubmitOutcomeUnknownError, None),
    (201, None, "not json{{", SubmitOutcomeUnknownError, None),
    (201, "error_not_found", None, SubmitOutcomeUnknownError, None),  # 2xx without an id
])
def test_submit_faults_say_whether_the_generation_may_exist(
    status: int, name: str | None, text: str | None, fault: type, code: ErrorCode | None
) -> None:
    body = fixture("luma", name) if name else {"detail": "refused"}
    error = submit_fault(adapter(), "ray-2", f"{BASE}/generations", status, body, text)
    assert isinstance(error, fault)
    assert code is None or (isinstance(error, PermanentError) and error.code == code)


@responses.activate
def test_fetch_reads_one_generation_with_its_id_quoted() -> None:
    responses.get(f"{BASE}/generations/a%2Fb", json=CREATED)
    resp = adapter().fetch("a/b")
    assert resp.http_status == 200 and resp.body == CREATED
    assert responses.calls[0].request.headers["Authorization"] == f"Bearer {KEY}"


@responses.activate
def test_a_connection_fault_while_polling_is_transient() -> None:
    responses.get(f"{BASE}/generations/g1", body=requests.ConnectionError("refused"))
    with pytest.raises(TransientError):
        adapter().fetch("g1")


VIDEO = "https://storage.cdn-luma.com/dream_machine/abc/video.mp4"


@pytest.mark.parametrize(("name", "status", "expected"), [
    pytest.param("generation_queued", 200, (Q, None, None), id="[COMPOSED] queued"),
    pytest.param("generation_dreaming", 200, (R, None, None),
                 id="[COMPOSED] dreaming, the progress video is not the output"),
    pytest.param("generation_completed", 200, (S, VIDEO, None), id="[COMPOSED] completed"),
    pytest.param("generation_completed_no_video", 200, (S, None, None),
                 id="[COMPOSED] completed without assets.video"),
    pytest.param("generation_failed_moderation", 200, (F, None, ErrorCode.MODERATION_REJECTED),
                 id="[COMPOSED] failed, moderation wording"),
    pytest.param("generation_failed_internal", 200,
                 (F, None, ErrorCode.UNKNOWN_PROVIDER_ERROR), id="[COMPOSED] failed, other"),
    pytest.param("generation_failed_no_reason", 200,
                 (F, None, ErrorCode.UNKNOWN_PROVIDER_ERROR), id="[COMPOSED] failed, no reason"),
    pytest.param("generation_unknown_state", 200, (R, None, None),
                 id="[COMPOSED] undocumented state reads as running"),
    pytest.param("error_not_found", 404, TaskNotFoundError, id="[COMPOSED] 404 detail"),
    pytest.param("error_not_found", 401, (PermanentError, ErrorCode.PROVIDER_AUTH_FAILED),
                 id="[COMPOSED] 401"),
    pytest.param("error_not_found", 429, RateLimitedError, id="[COMPOSED] 429"),
    pytest.param("error_not_found", 500, TransientError, id="[COMPOSED] 500"),
    pytest.param("error_validation", 422, TransientError, id="[COMPOSED] 422 while polling"),
])
def test_every_recorded_answer_gives_its_verdict(name: str, status: int,
                                                 expected: object) -> None:
    expect(adapter(), answer(status, fixture("luma", name)), expected)


def test_a_page_that_is_not_json_is_transient() -> None:
    expect(adapter(), answer(200, text="<html>maintenance</html>"), TransientError)


def test_a_kie_shaped_success_is_not_a_generation() -> None:
    kie = {"code": 200, "msg": "success", "data": {"taskId": "t", "successFlag": 1,
                                                   "response": {"resultUrls": [VIDEO]}}}
    expect(adapter(), answer(200, kie), TransientError)


def test_luma_does_not_sign_callbacks_so_the_url_token_proves_them() -> None:
    assert LumaProvider.pushes_callbacks and not LumaProvider.signs_callbacks


@pytest.mark.parametrize("headers", [{}, {"x-signature": "anything"}])
def test_a_callback_names_its_generation_whatever_headers_it_brings(headers: dict[str, str]
                                                                    ) -> None:
    body = fixture("luma", "generation_completed")
    assert callback(adapter(), body, headers).task_id == body["id"]


@pytest.mark.parametrize("body", [{}, {"state": "completed"}, {"id": ""}, [], "x", {"id": 7.5}])
def test_a_callback_that_names_no_generation_is_a_400(body: object) -> None:
    with pytest.raises(CallbackRejected) as info:
        callback(adapter(), body)
    assert info.value.status == 400


def test_the_fake_pushes_the_generation_object_and_it_names_the_submitted_task() -> None:
    task_id, received, provider = pushed("luma")
    assert received, "the fake sent no callback"
    body = json.loads(received[0].body)
    assert body["state"] == "completed"
    assert callback(provider, body).task_id == task_id


@pytest.mark.parametrize(("url", "headers"), [
    (f"{BASE}/generations/g1/video.mp4", {"Authorization": f"Bearer {KEY}"}),
    (VIDEO, {}),
    ("http://api.lumalabs.test/dream-machine/v1/x.mp4", {}),  # another scheme: no key
])
def test_the_key_goes_only_to_the_api_origin(url: str, headers: dict[str, str]) -> None:
    assert adapter().download_headers(url) == headers


def test_luma_has_no_cancel() -> None:
    assert not LumaProvider.can_cancel and adapter().cancel("g1") is False
