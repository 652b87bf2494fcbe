"""fal.ai queue: the requests out, the faults back, every recorded shape, signed webhooks.

Fixtures in ``tests/fixtures/fal``: [DOC] is providers.md §7's literal submit answer, webhook
body and the documented error structures/types; [3P] the ``video.url`` result seen in typed
SDKs; [COMPOSED] built from the documented fields where the docs give no literal example;
[UNCONFIRMED] the error fields a newer status answer may carry.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import responses
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.listeners import Listener
from videopoll.errors import (
    CallbackRejected,
    PermanentError,
    RateLimitedError,
    SubmitOutcomeUnknownError,
    TaskNotFoundError,
    TransientError,
)
from videopoll.fake_provider import start_in_thread
from videopoll.models import ErrorCode, GenerationSpec, PollState, ProviderResponse
from videopoll.providers import get_model
from videopoll.providers.base import CallbackRequest, Provider
from videopoll.providers.fal import FalProvider
from videopoll.providers.fal.webhook import JWKS_REFRESH, encode_key, signed_message

BASE = "https://queue.fal.test"
KEY = "fal-key-id:fal-secret"
RID = "80e732af-660e-45cd-bd63-580e4f2a94cc"
VEO, KLING = "fal-ai/veo3", "fal-ai/kling-video/v2.1/standard/text-to-video"
TASK = f"fal-ai/veo3/requests/{RID}"
FIXTURES = Path(__file__).parent / "fixtures" / "fal"
IMAGE = "https://img.example/a.png"
JWKS = "https://rest.fal.test/.well-known/jwks.json"
S, R, Q, F = PollState.SUCCEEDED, PollState.RUNNING, PollState.QUEUED, PollState.FAILED
SIGNER = Ed25519PrivateKey.generate()


def body(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def public(key: Ed25519PrivateKey) -> str:
    return encode_key(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


def adapter(**extra: Any) -> FalProvider:
    fields: dict[str, Any] = {"base_url": BASE, "api_key": KEY,
                              "webhook_public_keys": public(SIGNER), **extra}
    provider = FalProvider.with_config(timeout=2, **fields)
    assert isinstance(provider, FalProvider)
    return provider


def spec(model: str, images: list[str] | None = None, aspect: str = "16:9") -> GenerationSpec:
    return GenerationSpec(model=model, prompt="a red fox", aspect_ratio=aspect,
                          duration_seconds=get_model(model).default_duration,
                          image_urls=images or [])


def accepted(app: str, request_id: str = RID) -> dict[str, str]:
    base = f"https://queue.fal.run/{app}/requests/{request_id}"
    return {"request_id": request_id, "response_url": base, "status_url": f"{base}/status",
            "cancel_url": f"{base}/cancel"}


def sent(mocked: responses.RequestsMock, i: int = 0) -> Any:
    return json.loads(mocked.calls[i].request.body or b"null")


# --- submit ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("model", "images", "aspect", "expected"), [
    (VEO, [], "9:16", {"prompt": "a red fox", "aspect_ratio": "9:16", "duration": "8s"}),
    ("fal-ai/veo3/image-to-video", [IMAGE], "16:9",
     {"prompt": "a red fox", "aspect_ratio": "16:9", "duration": "8s", "image_url": IMAGE}),
    (KLING, [], "1:1", {"prompt": "a red fox", "aspect_ratio": "1:1", "duration": "5"}),
    ("fal-ai/kling-video/v2.1/standard/image-to-video", [IMAGE], "16:9",
     {"prompt": "a red fox", "duration": "5", "image_url": IMAGE}),
])
def test_submit_sends_the_model_input_to_its_endpoint_with_key_auth(
    mocked: responses.RequestsMock, model: str, images: list[str], aspect: str,
    expected: dict[str, Any],
) -> None:
    app = "/".join(model.split("/")[:2])
    mocked.post(f"{BASE}/{model}", json=accepted(app))
    task = adapter().submit(get_model(model), spec(model, images, aspect), None)
    assert task == f"{app}/requests/{RID}"  # owner/app only, never the subpath
    assert sent(mocked) == expected
    request = mocked.calls[0].request
    assert request.headers["Authorization"] == f"Key {KEY}"
    assert "fal_webhook" not in (request.url or "")


def test_submit_passes_the_callback_url_with_the_app_it_needs(
    mocked: responses.RequestsMock,
) -> None:
    mocked.post(f"{BASE}/{KLING}", json=body("submit_accepted_kling_webhook"))
    task = adapter().submit(get_model(KLING), spec(KLING), "https://me.example/cb/fal?t=1")
    assert task == f"fal-ai/kling-video/requests/{RID}"
    query = urlsplit(mocked.calls[0].request.url or "").query
    assert dict(parse_qsl(query)) == {
        "fal_webhook": "https://me.example/cb/fal?t=1&app=fal-ai%2Fkling-video"}


@pytest.mark.parametrize(("answer", "task"), [
    (body("submit_accepted"), f"fal-ai/fast-sdxl/requests/{RID}"),  # [DOC]: what fal says
    ({"request_id": RID}, TASK),  # no URLs: the documented layout
    ({"request_id": RID, "status_url": "https://x/other/place"}, TASK),
    ({**accepted("fal-ai/veo3"), "status_url": f"{BASE}/a/b/requests/other-id/status"}, TASK),
])
def test_the_task_id_rebuilds_the_status_url_fal_returned(
    mocked: responses.RequestsMock, answer: dict[str, Any], task: str,
) -> None:
    mocked.post(f"{BASE}/{VEO}", json=answer)
    assert adapter().submit(get_model(VEO), spec(VEO), None) == task


def test_a_base_with_a_path_is_stripped_from_the_status_url(
    mocked: responses.RequestsMock,
) -> None:
    mocked.post(f"{BASE}/fal/{VEO}", json={
        "request_id": RID, "status_url": f"{BASE}/fal/fal-ai/veo3/requests/{RID}/status"})
    assert adapter(base_url=f"{BASE}/fal").submit(get_model(VEO), spec(VEO), None) == TASK


@pytest.mark.parametrize(("status", "payload", "raises", "code"), [
    (401, {"detail": "No user found for Key ID and Secret"}, PermanentError,
     ErrorCode.PROVIDER_AUTH_FAILED),
    (403, {"detail": "User is locked. Reason: Exhausted balance."}, PermanentError,
     ErrorCode.INSUFFICIENT_CREDITS),
    (429, {"detail": "Too many requests"}, RateLimitedError, None),
    (422, body("result_content_policy"), PermanentError, ErrorCode.MODERATION_REJECTED),
    (422, body("result_image_too_small"), PermanentError, ErrorCode.VALIDATION_FAILED),
    (422, body("result_file_download_error"), PermanentError, ErrorCode.ASSET_FETCH_FAILED),
    (400, {"detail": "Invalid input"}, PermanentError, ErrorCode.VALIDATION_FAILED),
    (404, {"detail": "Application not found"}, PermanentError, ErrorCode.VALIDATION_FAILED),
    (500, {"detail": "Internal Server Error"}, SubmitOutcomeUnknownError, None),
    (504, None, SubmitOutcomeUnknownError, None),
    (200, None, SubmitOutcomeUnknownError, None),  # garbled 200: a request may exist
    (200, {"status_url": "x"}, SubmitOutcomeUnknownError, None),  # accepted, no request id
    (200, {"request_id": "a/b"}, SubmitOutcomeUnknownError, None),  # an id we cannot poll
])
def test_submit_error_mapping(
    mocked: responses.RequestsMock, status: int, payload: Any, raises: type[Exception],
    code: ErrorCode | None,
) -> None:
    mocked.post(f"{BASE}/{VEO}", status=status,
                body=json.dumps(payload) if payload is not None else "<html>oops</html>")
    with pytest.raises(raises) as info:
        adapter().submit(get_model(VEO), spec(VEO), None)
    assert type(info.value) is raises
    if code is not None:
        assert isinstance(info.value, PermanentError) and info.value.code == code


def test_an_image_to_video_model_without_an_image_sends_nothing() -> None:
    model = get_model("fal-ai/veo3/image-to-video")
    with pytest.raises(PermanentError) as info:
        adapter().submit(model, spec("fal-ai/veo3"), None)  # responses not active: no call
    assert info.value.code == ErrorCode.VALIDATION_FAILED


# --- fetch and normalize ------------------------------------------------------------------------
def test_a_pending_status_is_one_call(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{BASE}/{TASK}/status", json=body("status_in_queue"), status=202)
    result = adapter().normalize(adapter().fetch(TASK))
    assert result.state is Q and len(mocked.calls) == 1
    assert mocked.calls[0].request.headers["Authorization"] == f"Key {KEY}"


def test_completed_reads_the_result_and_merges_it(mocked: responses.RequestsMock) -> None:
    task = f"fal-ai/kling-video/requests/{RID}"
    mocked.get(f"{BASE}/{task}/status", json=body("status_completed"))
    mocked.get(f"{BASE}/{task}", json=body("result_video"))
    resp = adapter().fetch(task)
    assert resp.body["status"] == "COMPLETED"
    assert resp.body["result"]["http_status"] == 200
    assert resp.body["result"]["body"] == body("result_video")


def poll(mocked: responses.RequestsMock, status_fixture: str, http: int = 200,
         result: str | None = None, result_http: int = 200) -> Any:
    mocked.get(f"{BASE}/{TASK}/status", json=body(status_fixture), status=http)
    if result is not None:
        mocked.get(f"{BASE}/{TASK}", json=body(result), status=result_http)
    provider = adapter()
    return provider.normalize(provider.fetch(TASK))


CDN = "https://v3.fal.media/files"


@pytest.mark.parametrize(("status", "http", "result", "rhttp", "state", "url", "code"), [
    ("status_in_queue", 202, None, 0, Q, None, None),  # [COMPOSED]
    ("status_in_progress", 202, None, 0, R, None, None),  # [COMPOSED]
    ("status_undocumented", 202, None, 0, R, None, None),  # unknown → running + warning
    ("status_completed", 200, "result_video", 200, S, f"{CDN}/zebra/Xy12_output.mp4",
     None),  # [3P]
    ("status_completed", 200, "result_videos_list", 200, S, f"{CDN}/lion/a1_output.mp4",
     None),  # [COMPOSED]
    ("status_completed", 200, "result_model_specific", 200, S, f"{CDN}/koala/c9.mp4",
     None),  # [COMPOSED] last resort
    ("status_completed", 200, "result_no_url", 200, S, None, None),  # missing-output budget
    ("status_completed", 200, "result_content_policy", 422, F, None,
     ErrorCode.MODERATION_REJECTED),  # [DOC]
    ("status_completed", 200, "result_image_too_small", 422, F, None,
     ErrorCode.VALIDATION_FAILED),  # [DOC]
    ("status_completed", 200, "result_file_download_error", 422, F, None,
     ErrorCode.ASSET_FETCH_FAILED),  # [COMPOSED]
    ("status_completed", 200, "result_internal_server_error", 500, F, None,
     ErrorCode.UNKNOWN_PROVIDER_ERROR),  # [COMPOSED]
    ("status_completed", 200, "result_request_timeout", 504, F, None,
     ErrorCode.PROVIDER_TIMEOUT),  # [DOC]
    ("status_completed", 200, "result_startup_timeout", 504, F, None,
     ErrorCode.PROVIDER_TIMEOUT),  # [DOC]
    ("status_completed", 200, "result_runner_scheduling_failure", 503, F, None,
     ErrorCode.PROVIDER_RATE_LIMITED),  # [DOC]
    ("status_completed", 200, "result_runner_disconnected", 503, F, None,
     ErrorCode.UNKNOWN_PROVIDER_ERROR),  # [DOC]
    ("status_completed", 200, "result_canceled", 400, F, None, ErrorCode.CANCELED),
    ("status_completed", 200, "result_validation_text", 400, F, None,
     ErrorCode.VALIDATION_FAILED),  # [COMPOSED]
])
def test_recorded_shapes(
    mocked: responses.RequestsMock, status: str, http: int, result: str | None, rhttp: int,
    state: PollState, url: str | None, code: ErrorCode | None,
) -> None:
    got = poll(mocked, status, http, result, rhttp)
    assert got.state is state
    assert (got.output_urls[0] if got.output_urls else None) == url
    assert got.error_code == code
    if state is F:
        assert got.provider_message


@pytest.mark.parametrize(("fixture", "state", "url", "code"), [
    ("webhook_ok", S, f"{CDN}/zebra/Xy12_output.mp4", None),  # [DOC]
    ("webhook_error_moderation", F, None, ErrorCode.MODERATION_REJECTED),  # [COMPOSED]
    ("webhook_payload_error", S, None, None),  # [DOC] fields: no payload, no URL
    ("status_completed_with_error", F, None, ErrorCode.PROVIDER_TIMEOUT),  # [UNCONFIRMED]
    ("status_completed", S, None, None),  # a status on its own, without the merged result
])
def test_bodies_as_they_arrive(fixture: str, state: PollState, url: str | None,
                               code: ErrorCode | None) -> None:
    got = adapter().normalize(ProviderResponse(http_status=200, body=body(fixture)))
    assert (got.state, got.output_urls[0] if got.output_urls else None, got.error_code) == (
        state, url, code)


@pytest.mark.parametrize(("status", "result", "rhttp", "raises"), [
    (401, None, 0, PermanentError), (403, None, 0, PermanentError),
    (404, None, 0, TaskNotFoundError), (429, None, 0, RateLimitedError),
    (500, None, 0, TransientError), (502, "<html>bad gateway</html>", 0, TransientError),
    (200, "not json{{", 0, TransientError),
    (200, {"status": "COMPLETED"}, 401, PermanentError),  # the result call's own faults
    (200, {"status": "COMPLETED"}, 429, RateLimitedError),
    (200, {"status": "COMPLETED"}, 502, TransientError),  # an HTML page, no verdict
    (200, {"status": "COMPLETED"}, 503, TransientError),  # JSON without a typed error
])
def test_faults(mocked: responses.RequestsMock, status: int, result: Any, rhttp: int,
                raises: type[Exception]) -> None:
    text = result if isinstance(result, str) else json.dumps(result or {"detail": "x"})
    mocked.get(f"{BASE}/{TASK}/status", body=text, status=status,
               headers={"Retry-After": "2"})
    if rhttp:
        page = "<html>x</html>" if rhttp == 502 else json.dumps({"detail": "busy"})
        mocked.get(f"{BASE}/{TASK}", body=page, status=rhttp)
    provider = adapter()
    with pytest.raises(raises) as info:
        provider.normalize(provider.fetch(TASK))
    assert type(info.value) is raises
    if raises is PermanentError:
        assert isinstance(info.value, PermanentError)
        assert info.value.code == ErrorCode.PROVIDER_AUTH_FAILED


def test_a_kie_shaped_body_is_not_a_fal_success() -> None:
    kie = {"code": 200, "msg": "success", "data": {"taskId": "t", "successFlag": 1,
                                                    "response": {"resultUrls": ["x.mp4"]}}}
    with pytest.raises(TransientError):
        adapter().normalize(ProviderResponse(http_status=200, body=kie))


def test_an_id_of_another_shape_is_polled_as_it_is(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{BASE}/bare-id/status", json={"detail": "Not Found"}, status=404)
    with pytest.raises(TaskNotFoundError):
        adapter().normalize(adapter().fetch("bare-id"))


# --- cancel, downloads ----------------------------------------------------------------------
@pytest.mark.parametrize(("status", "answer", "ok"), [
    (202, {"status": "CANCELLATION_REQUESTED"}, True),
    (400, {"status": "ALREADY_COMPLETED"}, False),
    (404, {"status": "NOT_FOUND"}, False),
])
def test_cancel(mocked: responses.RequestsMock, status: int, answer: Any, ok: bool) -> None:
    mocked.put(f"{BASE}/{TASK}/cancel", json=answer, status=status)
    assert adapter().cancel(TASK) is ok
    assert mocked.calls[0].request.headers["Authorization"] == f"Key {KEY}"


def test_cancel_is_best_effort(mocked: responses.RequestsMock) -> None:
    mocked.put(f"{BASE}/{TASK}/cancel", body=requests.ConnectionError("refused"))
    assert adapter().cancel(TASK) is False


def test_download_headers_only_for_fal_s_own_origin() -> None:
    provider = adapter()
    assert provider.download_headers(f"{BASE}/files/v.mp4") == {"Authorization": f"Key {KEY}"}
    assert provider.download_headers(f"{CDN}/zebra/v.mp4") == {}
    assert provider.download_headers("http://queue.fal.test/v.mp4") == {}  # other scheme


# --- webhooks -------------------------------------------------------------------------------
def webhook(request_id: str = RID, key: Ed25519PrivateKey = SIGNER, age: float = 0.0,
            raw: bytes | None = None, app: str | None = "fal-ai/veo3", drop: str = "",
            signed_raw: bytes | None = None) -> CallbackRequest:
    raw = raw if raw is not None else json.dumps({**body("webhook_ok"),
                                                  "request_id": request_id}).encode()
    stamp = str(int(time.time() - age))
    message = signed_message(request_id, "user-1", stamp, signed_raw or raw)
    headers = {"x-fal-webhook-request-id": request_id, "x-fal-webhook-user-id": "user-1",
               "x-fal-webhook-timestamp": stamp,
               "x-fal-webhook-signature": key.sign(message).hex()}
    headers.pop(drop, None)
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = None
    return CallbackRequest(raw=raw, body=parsed, headers=headers,
                           query={"app": app} if app is not None else {})


def test_a_signed_webhook_names_the_task_submit_returned() -> None:
    assert adapter().callback(webhook()).task_id == TASK


@pytest.mark.parametrize(("change", "status"), [
    ({"key": Ed25519PrivateKey.generate()}, 401),  # signed with another key
    ({"age": 301}, 401),  # stale
    ({"age": -301}, 401),  # from the future
    ({"drop": "x-fal-webhook-signature"}, 401),
    ({"drop": "x-fal-webhook-timestamp"}, 401),
    ({"drop": "x-fal-webhook-user-id"}, 401),
    ({"drop": "x-fal-webhook-request-id"}, 401),
    ({"signed_raw": b'{"request_id": "other"}'}, 401),  # the body was changed
    ({"app": None}, 400),  # our callback URL's ?app= is missing
    ({"app": "fal-ai"}, 400),
    ({"raw": json.dumps({"status": "OK"}).encode()}, 400),  # names no request
    ({"raw": json.dumps({**body("webhook_ok"), "request_id": "x"}).encode()}, 400),
])
def test_webhooks_refused(change: dict[str, Any], status: int) -> None:
    with pytest.raises(CallbackRejected) as info:
        adapter().callback(webhook(**change))  # built now: the timestamps are fresh
    assert info.value.status == status


@pytest.mark.parametrize("signature", ["zz-not-hex", "00ff", "ab" * 65])
def test_a_malformed_signature_is_refused_before_any_key_fetch(
    mocked: responses.RequestsMock, signature: str,
) -> None:
    req = webhook()
    headers = {**req.headers, "x-fal-webhook-signature": signature}
    with pytest.raises(CallbackRejected) as info:  # a JWKS fetch would be a 503 here
        adapter(webhook_public_keys="", jwks_url=JWKS).callback(
            CallbackRequest(raw=req.raw, body=req.body, headers=headers, query=req.query))
    assert info.value.status == 401 and not mocked.calls



def test_keys_come_from_the_jwks_once_then_from_the_cache(
    mocked: responses.RequestsMock,
) -> None:
    mocked.get(JWKS, json={"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "bad"},
                                    {"kty": "OKP", "crv": "Ed25519", "x": public(SIGNER)}]})
    provider = adapter(webhook_public_keys="", jwks_url=JWKS)
    assert provider.callback(webhook()).task_id == TASK
    assert provider.callback(webhook()).task_id == TASK
    assert len(mocked.calls) == 1
    assert "Authorization" not in mocked.calls[0].request.headers  # no key to the key host


def test_an_unknown_signature_refetches_rotated_keys_at_most_so_often(
    mocked: responses.RequestsMock,
) -> None:
    rotated = Ed25519PrivateKey.generate()
    mocked.get(JWKS, json={"keys": [{"x": public(rotated)}]})
    provider = adapter(webhook_public_keys="", jwks_url=JWKS)
    provider.keys._cached = (time.monotonic() - JWKS_REFRESH - 1, [SIGNER.public_key()])
    assert provider.callback(webhook(key=rotated)).task_id == TASK
    with pytest.raises(CallbackRejected):  # just refetched: a forgery does not fetch again
        provider.callback(webhook(key=Ed25519PrivateKey.generate()))
    assert len(mocked.calls) == 1


@pytest.mark.parametrize("answer", [{"status": 500}, {"json": {"keys": []}},
                                    {"body": requests.ConnectionError("down")}])
def test_no_keys_is_a_503_fal_will_retry(mocked: responses.RequestsMock,
                                         answer: dict[str, Any]) -> None:
    mocked.get(JWKS, **answer)
    with pytest.raises(CallbackRejected) as info:
        adapter(webhook_public_keys="", jwks_url=JWKS).callback(webhook())
    assert info.value.status == 503


# --- against the fake, over real HTTP ---------------------------------------------------------
def test_the_fake_s_webhook_carries_app_and_verifies_to_the_submitted_task() -> None:
    """What the contract test cannot show: fal calls the URL we gave it, ``?app=`` and all."""
    fake, listener = start_in_thread(), Listener()
    fake.state.callback_delay = 0.1
    try:
        provider: Provider = FalProvider.with_config(timeout=5, **fake.provider_settings()["fal"])
        task = provider.submit(get_model(KLING), spec(KLING), f"{listener.url}/callbacks/fal")
        deadline = time.monotonic() + 5
        while not listener.received and time.monotonic() < deadline:
            time.sleep(0.05)
        got = listener.received[0]
        query = dict(parse_qsl(urlsplit(got.path).query))
        req = CallbackRequest(raw=got.body, body=json.loads(got.body), query=query,
                              headers={k.lower(): v for k, v in got.headers.items()})
        assert query["app"] == "fal-ai/kling-video"
        assert provider.callback(req).task_id == task
        final = provider.normalize(provider.fetch(task))
        assert final.state is S and final.output_urls
    finally:
        listener.stop()
        fake.stop()
