"""MiniMax Hailuo: HTTP-200 errors, the two-step output, every shape, the challenge callback.

Fixtures in ``tests/fixtures/minimax`` are [COMPOSED] from providers.md §9.3's field lists
(its two examples are composed too); the ``base_resp`` codes are [3P] (1026/1027 [DOC] via
Baidu Qianfan's proxy page). The unknown-task answer (2013) is our guess: none is documented.
"""

from __future__ import annotations

import json

import pytest
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
from videopoll.providers import MODELS, get_model
from videopoll.providers.base import Provider
from videopoll.providers.minimax import MiniMaxProvider

BASE = "https://api.minimax.test"
KEY = "mm-test-key"
QUERY = f"{BASE}/v1/query/video_generation"
RETRIEVE = f"{BASE}/v1/files/retrieve"
VIDEO = "https://video-product.cdn.minimax.io/inference_output/video/2026-11-22/abc/output.mp4"


def adapter() -> Provider:
    return MiniMaxProvider.with_config(base_url=BASE, api_key=KEY, timeout=2)


def test_the_bare_hailuo_02_name_is_minimax_and_kie_keeps_its_qualified_one() -> None:
    assert get_model("hailuo-02").family == "minimax"
    assert get_model("hailuo-2.3").remote_id == "MiniMax-Hailuo-2.3"
    assert MODELS["kie_market:hailuo-02"].family == "kie_market"


@responses.activate
def test_a_submit_sends_the_documented_body_with_the_key_and_callback() -> None:
    responses.post(f"{BASE}/v1/video_generation", json=fixture("minimax", "submit_accepted"))
    task = adapter().submit(get_model("hailuo-02"),
                            spec("hailuo-02", ["https://img/a.png"], seconds=10),
                            "https://us.example/callbacks/minimax?token=t")
    assert task == "176843862716480"
    call = responses.calls[0]
    assert call.request.headers["Authorization"] == f"Bearer {KEY}"
    assert sent(call) == {"model": "MiniMax-Hailuo-02", "prompt": "a red fox", "duration": 10,
                          "resolution": "768P", "first_frame_image": "https://img/a.png",
                          "callback_url": "https://us.example/callbacks/minimax?token=t"}


@pytest.mark.parametrize(("status", "name", "fault", "code"), [
    # HTTP 200 with a non-zero code: refused, so no task exists
    (200, "error_rate_limit", RateLimitedError, None),
    (200, "error_auth", PermanentError, ErrorCode.PROVIDER_AUTH_FAILED),
    (200, "error_balance", PermanentError, ErrorCode.INSUFFICIENT_CREDITS),
    (200, "error_input_sensitive", PermanentError, ErrorCode.MODERATION_REJECTED),
    (200, "error_invalid_params", PermanentError, ErrorCode.VALIDATION_FAILED),
    (200, "error_server", TransientError, None),
    (401, None, PermanentError, ErrorCode.PROVIDER_AUTH_FAILED),
    (429, None, RateLimitedError, None),
    (500, None, SubmitOutcomeUnknownError, None),
    (500, "error_server", SubmitOutcomeUnknownError, None),  # behind a 5xx a code proves nothing
    (200, "files_retrieve", SubmitOutcomeUnknownError, None),  # code 0 but no task_id
])
def test_submit_reads_base_resp_before_the_http_status(
    status: int, name: str | None, fault: type, code: ErrorCode | None
) -> None:
    body = fixture("minimax", name) if name else {"error": "gateway"}
    error = submit_fault(adapter(), "hailuo-02", f"{BASE}/v1/video_generation", status, body)
    assert type(error) is fault
    assert code is None or (isinstance(error, PermanentError) and error.code == code)


@responses.activate
def test_a_success_is_followed_to_the_file_and_its_url_merged_in() -> None:
    responses.get(QUERY, json=fixture("minimax", "query_success"),
                  match=[responses.matchers.query_param_matcher({"task_id": "t1"})])
    responses.get(RETRIEVE, json=fixture("minimax", "files_retrieve"),
                  match=[responses.matchers.query_param_matcher({"file_id": "176844028768320"})])
    provider = adapter()
    resp = provider.fetch("t1")
    assert resp.body["file"]["download_url"] == VIDEO and resp.body["status"] == "Success"
    assert [c.request.headers["Authorization"] for c in responses.calls] == [f"Bearer {KEY}"] * 2
    assert provider.normalize(resp).output_urls == [VIDEO]


@pytest.mark.parametrize("name", ["query_processing", "query_fail_output_sensitive",
                                  "error_rate_limit"])
def test_only_a_success_costs_a_second_call(name: str) -> None:
    with responses.RequestsMock() as mocked:
        mocked.get(QUERY, json=fixture("minimax", name))
        assert adapter().fetch("t1").body == fixture("minimax", name)
        assert len(mocked.calls) == 1


@pytest.mark.parametrize(("retrieve", "expected"), [
    ({"json": fixture("minimax", "error_rate_limit")}, RateLimitedError),
    ({"json": {"error": "gateway"}, "status": 502}, TransientError),
    ({"body": "not json", "status": 200}, TransientError),
])
def test_a_failed_retrieve_is_judged_as_a_fault_of_the_call(retrieve: dict[str, object],
                                                            expected: type) -> None:
    with responses.RequestsMock() as mocked:
        mocked.get(QUERY, json=fixture("minimax", "query_success"))
        mocked.get(RETRIEVE, **retrieve)
        provider = adapter()
        with pytest.raises(expected):
            provider.normalize(provider.fetch("t1"))


@pytest.mark.parametrize(("name", "status", "expected"), [
    pytest.param("query_preparing", 200, (Q, None, None), id="[COMPOSED] Preparing"),
    pytest.param("query_queueing", 200, (Q, None, None), id="[COMPOSED] Queueing"),
    pytest.param("query_processing", 200, (R, None, None), id="[COMPOSED] Processing"),
    pytest.param("query_success_merged", 200, (S, VIDEO, None),
                 id="[COMPOSED] Success with the retrieved file"),
    pytest.param("query_success", 200, (S, None, None), id="[COMPOSED] Success, no file yet"),
    pytest.param("query_fail_output_sensitive", 200, (F, None, ErrorCode.MODERATION_REJECTED),
                 id="[COMPOSED] Fail 1027"),
    pytest.param("query_fail_input_sensitive", 200, (F, None, ErrorCode.MODERATION_REJECTED),
                 id="[COMPOSED] Fail 1026"),
    pytest.param("query_moderation_without_status", 200,
                 (F, None, ErrorCode.MODERATION_REJECTED), id="[COMPOSED] 1027, no status"),
    pytest.param("query_fail_plain", 200, (F, None, ErrorCode.UNKNOWN_PROVIDER_ERROR),
                 id="[COMPOSED] Fail with code 0"),
    pytest.param("query_fail_unknown_code", 200, (F, None, ErrorCode.UNKNOWN_PROVIDER_ERROR),
                 id="[COMPOSED] Fail 1000"),
    pytest.param("query_unknown_status", 200, (R, None, None),
                 id="[COMPOSED] undocumented status reads as running"),
    pytest.param("error_rate_limit", 200, RateLimitedError, id="[3P] 1002 with HTTP 200"),
    pytest.param("error_auth", 200, (PermanentError, ErrorCode.PROVIDER_AUTH_FAILED),
                 id="[3P] 1004 with HTTP 200"),
    pytest.param("error_balance", 200, (PermanentError, ErrorCode.INSUFFICIENT_CREDITS),
                 id="[3P] 1008 with HTTP 200"),
    pytest.param("error_invalid_params", 200, TaskNotFoundError,
                 id="[COMPOSED] 2013: the task id is unknown"),
    pytest.param("error_server", 200, TransientError, id="[3P] 1013"),
    pytest.param("query_processing", 500, TransientError, id="[COMPOSED] HTTP 500"),
    pytest.param("query_processing", 404, TaskNotFoundError, id="[COMPOSED] HTTP 404"),
])
def test_every_recorded_answer_gives_its_verdict(name: str, status: int,
                                                 expected: object) -> None:
    expect(adapter(), answer(status, fixture("minimax", name)), expected)


def test_bodies_that_are_not_a_query_answer_are_transient() -> None:
    kie = {"code": 200, "msg": "success", "data": {"taskId": "t", "state": "success"}}
    for resp in (answer(200, kie), answer(200, text="<html>"), answer(200, {"status": "x"})):
        expect(adapter(), resp, TransientError)


def test_the_verification_challenge_is_echoed_and_wakes_nothing() -> None:
    outcome = callback(adapter(), fixture("minimax", "callback_challenge"))
    assert outcome.task_id is None
    assert outcome.reply == {"challenge": "1a3cs1j-601a-118y-ch52-o48911eabc3u"}


def test_a_status_update_names_its_task() -> None:
    outcome = callback(adapter(), fixture("minimax", "callback_status"))
    assert (outcome.task_id, outcome.reply) == ("176843862716480", None)


@pytest.mark.parametrize("body", [{}, {"challenge": ""}, {"status": "Success"}, None])
def test_a_callback_that_names_no_task_is_a_400(body: object) -> None:
    with pytest.raises(CallbackRejected) as info:
        callback(adapter(), body)
    assert info.value.status == 400


def test_the_fake_verifies_the_callback_url_first_then_sends_the_update() -> None:
    task_id, received, provider = pushed("minimax", expected=2)
    bodies = [json.loads(r.body) for r in received]
    assert len(bodies) == 2 and set(bodies[0]) == {"challenge"}
    assert callback(provider, bodies[0]).reply == bodies[0]
    assert callback(provider, bodies[1]).task_id == task_id


def test_the_key_goes_only_to_the_api_origin() -> None:
    assert not MiniMaxProvider.signs_callbacks and not MiniMaxProvider.can_cancel
    assert adapter().download_headers(VIDEO) == {}
    assert adapter().download_headers(f"{BASE}/v1/files/x") == {"Authorization": f"Bearer {KEY}"}
