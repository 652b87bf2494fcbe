"""Kling: the JWT, the two create endpoints, the body codes, every shape, callbacks.

Fixtures in ``tests/fixtures/kling`` are [COMPOSED] from providers.md §9.4's envelope and
field list ([3P]: official docs are not in the stored corpus); the body codes are the
[UNCONFIRMED] ones §9.4 names plus the rest of the same table from a copy of the official
docs ([3P]). The JWT is checked against RFC 7519's HS256 rules with a known token.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
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
from videopoll.models import ErrorCode, ProviderResponse
from videopoll.providers import MODELS, get_model
from videopoll.providers.base import Provider
from videopoll.providers.kling import KlingProvider, hs256_claims, hs256_token

BASE = "https://api.kling.test"
AK, SK = "kling-ak", "kling-sk"
T2V, I2V = f"{BASE}/v1/videos/text2video", f"{BASE}/v1/videos/image2video"
CREATED = {"code": 0, "message": "SUCCEED", "request_id": "r1",
           "data": {"task_id": "k1", "task_status": "submitted"}}
GATEWAY = {"error": "gateway"}
VIDEO = "https://v15-kling.klingai.com/bs2/upload-ylab-stunt-sgp/abc.mp4"


def kf(name: str) -> Any:
    return fixture("kling", name)


def adapter() -> Provider:
    return KlingProvider.with_config(base_url=BASE, access_key=AK, secret_key=SK, timeout=2)


def bearer_claims(header: str) -> dict[str, object]:
    scheme, _, token = header.partition(" ")
    claims = hs256_claims(token, SK)
    assert scheme == "Bearer" and claims is not None
    return claims


def test_hs256_matches_a_known_token() -> None:
    # the HS256 example token of jwt.io (header alg/typ, these claims, this secret)
    token = hs256_token({"sub": "1234567890", "name": "John Doe", "iat": 1516239022},
                        "your-256-bit-secret")
    assert token == ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6Ik"
                     "pvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_ad"
                     "Qssw5c")


@pytest.mark.parametrize("token", [
    hs256_token({"iss": AK}, "other-secret"), "a.b", "", "x.y.z",
    "eyJhbGciOiJub25lIn0." + base64.urlsafe_b64encode(b'{"iss":"a"}').decode() + ".",
])
def test_a_token_not_signed_with_the_secret_is_refused(token: str) -> None:
    assert hs256_claims(token, SK) is None


@responses.activate
def test_every_request_carries_a_fresh_jwt_from_the_key_pair() -> None:
    responses.post(T2V, json=CREATED)
    adapter().submit(get_model("kling-2.6"), spec("kling-2.6"), None)
    claims = bearer_claims(responses.calls[0].request.headers["Authorization"])
    now = int(time.time())
    assert claims["iss"] == AK
    assert now + 1790 <= int(str(claims["exp"])) <= now + 1800
    assert now - 10 <= int(str(claims["nbf"])) <= now - 5


def test_without_a_key_pair_no_token_is_made() -> None:
    assert "Authorization" not in KlingProvider.with_config(base_url=BASE).headers()


@responses.activate
def test_a_text_submit_goes_to_text2video_with_the_documented_body() -> None:
    responses.post(T2V, json=CREATED)
    task = adapter().submit(get_model("kling-2.6"), spec("kling-2.6", aspect="9:16", seconds=10),
                            "https://us.example/callbacks/kling?token=t")
    assert task == "k1"
    body = sent(responses.calls[0])
    assert body.pop("external_task_id").startswith("vp-t2v-")
    assert body == {"model_name": "kling-v2-6", "prompt": "a red fox", "duration": "10",
                    "mode": "std", "aspect_ratio": "9:16",
                    "callback_url": "https://us.example/callbacks/kling?token=t"}


@responses.activate
def test_an_image_submit_goes_to_image2video_and_its_id_says_so() -> None:
    responses.post(I2V, json=CREATED)
    task = adapter().submit(get_model("kling-2.1"),
                            spec("kling-2.1", ["https://img/a.png", "https://img/b.png"]), None)
    assert task == "image2video/k1"
    body = sent(responses.calls[0])
    assert body["external_task_id"].startswith("vp-i2v-") and "aspect_ratio" not in body
    assert (body["model_name"], body["image"], body["image_tail"], body["mode"]) == (
        "kling-v2-1", "https://img/a.png", "https://img/b.png", "pro")
    assert "callback_url" not in body
    assert MODELS["kling:kling-2.1"].min_images == 1  # v2.1 is image-to-video only


@pytest.mark.parametrize(("status", "body", "fault", "code"), [
    (401, kf("error_auth_1000"), PermanentError, ErrorCode.PROVIDER_AUTH_FAILED),
    (429, kf("error_balance_1102"), PermanentError, ErrorCode.INSUFFICIENT_CREDITS),  # not a limit
    (400, kf("error_content_1301"), PermanentError, ErrorCode.MODERATION_REJECTED),
    (429, kf("error_rate_1302"), RateLimitedError, None),
    (429, kf("error_concurrency_1303"), RateLimitedError, None),
    (400, kf("error_params_1201"), PermanentError, ErrorCode.VALIDATION_FAILED),
    (404, kf("error_not_found_1203"), PermanentError, ErrorCode.VALIDATION_FAILED),  # no such model
    (200, kf("error_content_1301"), PermanentError, ErrorCode.MODERATION_REJECTED),  # code first
    (500, kf("error_server_5000"), SubmitOutcomeUnknownError, None),
    (429, GATEWAY, RateLimitedError, None),
    (502, GATEWAY, SubmitOutcomeUnknownError, None),
    (200, {"code": 0, "message": "SUCCEED", "data": {}}, SubmitOutcomeUnknownError, None),
])
def test_submit_faults_read_the_body_code_first(
    status: int, body: object, fault: type, code: ErrorCode | None
) -> None:
    error = submit_fault(adapter(), "kling-2.6", T2V, status, body)
    assert type(error) is fault
    assert code is None or (isinstance(error, PermanentError) and error.code == code)


@responses.activate
def test_a_text_task_is_read_at_text2video() -> None:
    responses.get(f"{T2V}/k%2F1", json=kf("task_processing"))
    assert adapter().fetch("k/1").http_status == 200


@responses.activate
def test_an_image_task_is_read_at_image2video() -> None:
    responses.get(f"{I2V}/k1", json=kf("task_succeed"))
    provider = adapter()
    assert provider.normalize(provider.fetch("image2video/k1")).output_urls == [VIDEO]
    bearer_claims(responses.calls[0].request.headers["Authorization"])


@responses.activate
def test_an_image_task_unknown_at_image2video_is_read_at_text2video() -> None:
    responses.get(f"{I2V}/k1", json=kf("error_not_found_1203"), status=404)
    responses.get(f"{T2V}/k1", json=kf("task_processing"))
    provider = adapter()
    assert provider.normalize(provider.fetch("image2video/k1")).state is R
    assert len(responses.calls) == 2


@pytest.mark.parametrize(("name", "status", "expected"), [
    pytest.param("task_submitted", 200, (Q, None, None), id="[COMPOSED] submitted"),
    pytest.param("task_processing", 200, (R, None, None), id="[COMPOSED] processing"),
    pytest.param("task_succeed", 200, (S, VIDEO, None), id="[COMPOSED] succeed"),
    pytest.param("task_succeed_no_videos", 200, (S, None, None),
                 id="[COMPOSED] succeed without videos"),
    pytest.param("task_failed_risk_control", 200, (F, None, ErrorCode.MODERATION_REJECTED),
                 id="[COMPOSED] failed, risk control wording"),
    pytest.param("task_failed_other", 200, (F, None, ErrorCode.UNKNOWN_PROVIDER_ERROR),
                 id="[COMPOSED] failed, other"),
    pytest.param("task_unknown_status", 200, (R, None, None),
                 id="[COMPOSED] undocumented status reads as running"),
    pytest.param("callback_task", 200, (S, "https://v15-kling.klingai.com/bs2/abc.mp4", None),
                 id="[COMPOSED] the bare task object"),
    pytest.param("error_auth_1000", 401, (PermanentError, ErrorCode.PROVIDER_AUTH_FAILED),
                 id="[3P] 1000"),
    pytest.param("error_token_expired_1004", 401,
                 (PermanentError, ErrorCode.PROVIDER_AUTH_FAILED), id="[3P] 1004"),
    pytest.param("error_balance_1102", 429, (PermanentError, ErrorCode.INSUFFICIENT_CREDITS),
                 id="[UNCONFIRMED] 1102 on HTTP 429"),
    pytest.param("error_content_1301", 400, (PermanentError, ErrorCode.MODERATION_REJECTED),
                 id="[UNCONFIRMED] 1301"),
    pytest.param("error_rate_1302", 429, RateLimitedError, id="[UNCONFIRMED] 1302"),
    pytest.param("error_concurrency_1303", 200, RateLimitedError, id="[UNCONFIRMED] 1303"),
    pytest.param("error_not_found_1203", 404, TaskNotFoundError, id="[3P] 1203"),
    pytest.param("error_params_1201", 400, TransientError, id="[3P] 1201 while polling"),
    pytest.param("error_server_5000", 500, TransientError, id="[3P] 5000"),
])
def test_every_recorded_answer_gives_its_verdict(name: str, status: int,
                                                 expected: object) -> None:
    expect(adapter(), answer(status, kf(name)), expected)


@pytest.mark.parametrize("resp", [
    answer(200, {"code": 200, "msg": "success", "data": {"taskId": "t", "successFlag": 1}}),
    answer(200, text="not json{{"), answer(502, text="<html>Bad Gateway</html>"),
    answer(404, text="<html>Not Found</html>"),
])
def test_foreign_and_broken_answers_are_transient(resp: ProviderResponse) -> None:
    expect(adapter(), resp, TransientError)


@pytest.mark.parametrize(("name", "task_id"), [
    ("callback_task", "image2video/CjhG7Wd3ZBwAAAAAAAhkAw"),  # our image mark
    ("callback_envelope", "CjhG7Wd3ZBwAAAAAAAhkAw"),  # inside the envelope, a text task
])
def test_a_callback_names_the_task_as_submit_returned_it(name: str, task_id: str) -> None:
    assert callback(adapter(), kf(name)).task_id == task_id


@pytest.mark.parametrize("body", [{}, {"task_status": "succeed"}, {"data": {}}, None, [1]])
def test_a_callback_that_names_no_task_is_a_400(body: object) -> None:
    with pytest.raises(CallbackRejected) as info:
        callback(adapter(), body)
    assert info.value.status == 400


@pytest.mark.parametrize("images", [None, ["https://img/a.png"]])
def test_the_fake_checks_the_jwt_and_its_callback_names_the_submitted_task(
    images: list[str] | None
) -> None:
    task_id, received, provider = pushed("kling", images=images)
    assert task_id.startswith("image2video/") == bool(images)
    assert received, "the fake sent no callback"
    assert callback(provider, json.loads(received[0].body)).task_id == task_id


def test_an_image_task_of_the_fake_is_polled_to_its_video() -> None:
    with against_fake("kling") as (_, provider):
        task_id = provider.submit(get_model("kling-2.1"),
                                  spec("kling-2.1", ["https://img/a.png"]), None)
        states = [provider.normalize(provider.fetch(task_id)).state for _ in range(3)]
    assert states == [Q, R, S]


def test_the_fake_refuses_a_token_signed_with_another_secret() -> None:
    forged = KlingProvider.with_config(access_key="fake-kling-ak", secret_key="wrong")
    with against_fake("kling") as (fakes, provider):
        forged.base_url = provider.base_url
        with pytest.raises(PermanentError) as info:
            forged.submit(get_model("kling-2.6"), spec("kling-2.6"), None)
        assert info.value.code == ErrorCode.PROVIDER_AUTH_FAILED and fakes.stats()["submits"] == 0


def test_the_token_goes_only_to_the_api_origin() -> None:
    assert not KlingProvider.signs_callbacks
    assert adapter().download_headers(VIDEO) == {}
    bearer_claims(adapter().download_headers(f"{BASE}/v1/files/x")["Authorization"])
