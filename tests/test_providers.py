"""Adapters against ``responses``: the right request out, the right exception back."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests
import responses

from videopoll.errors import PermanentError, RateLimitedError, TransientError
from videopoll.models import ErrorCode, GenerationSpec
from videopoll.providers import MODELS, PROVIDERS, get_model, supported_models, validate_options
from videopoll.providers.base import Provider

BASE = "https://api.kie.test"
SUBMIT_PATH = {"kie_veo": "/api/v1/veo/generate", "kie_market": "/api/v1/jobs/createTask"}
FETCH_PATH = {"kie_veo": "/api/v1/veo/record-info", "kie_market": "/api/v1/jobs/recordInfo"}
MODEL_OF = {"kie_veo": "veo3_fast", "kie_market": "sora-2"}


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as rsps:
        yield rsps


def adapter(family: str) -> Provider:
    return PROVIDERS[family](base_url=BASE, api_key="kie-secret", timeout=2)


def spec(model: str, images: list[str] | None = None) -> GenerationSpec:
    info = get_model(model)
    return GenerationSpec(model=model, prompt="a red fox", aspect_ratio="16:9",
                          duration_seconds=info.default_duration, image_urls=images or [])


@pytest.mark.parametrize("family", sorted(PROVIDERS))
def test_contract_submit_returns_task_id_with_auth(
    mocked: responses.RequestsMock, family: str
) -> None:
    mocked.post(BASE + SUBMIT_PATH[family],
                json={"code": 200, "msg": "success", "data": {"taskId": "task_1"}})
    model = get_model(MODEL_OF[family])
    assert adapter(family).submit(model, spec(model.name), None) == "task_1"
    assert mocked.calls[0].request.headers["Authorization"] == "Bearer kie-secret"


@pytest.mark.parametrize("family", sorted(PROVIDERS))
def test_contract_fetch_returns_the_raw_answer(
    mocked: responses.RequestsMock, family: str
) -> None:
    mocked.get(BASE + FETCH_PATH[family], json={"code": 200, "data": {"x": 1}}, status=200,
               match=[responses.matchers.query_param_matcher({"taskId": "task_1"})])
    resp = adapter(family).fetch("task_1")
    assert (resp.http_status, resp.body) == (200, {"code": 200, "data": {"x": 1}})


@pytest.mark.parametrize("family", sorted(PROVIDERS))
def test_contract_connection_error_is_transient(
    mocked: responses.RequestsMock, family: str
) -> None:
    mocked.get(BASE + FETCH_PATH[family], body=requests.ConnectionError("refused"))
    with pytest.raises(TransientError):
        adapter(family).fetch("task_1")


@pytest.mark.parametrize(
    ("status", "payload", "headers", "raises", "code"),
    [
        (200, {"code": 401, "msg": "You do not have access permissions"}, {}, PermanentError,
         ErrorCode.PROVIDER_AUTH_FAILED),
        (200, {"code": 402, "msg": "Credits insufficient"}, {}, PermanentError,
         ErrorCode.INSUFFICIENT_CREDITS),
        (429, {"code": 429, "msg": "Rate limit exceeded"}, {"Retry-After": "3"},
         RateLimitedError, None),
        (200, {"code": 422, "msg": "Your prompt was flagged by Website as violating content "
                                   "policies."}, {}, PermanentError,
         ErrorCode.MODERATION_REJECTED),
        (200, {"code": 422, "msg": "prompt is too long"}, {}, PermanentError,
         ErrorCode.VALIDATION_FAILED),
        (200, {"code": 455, "msg": "Service maintenance"}, {}, RateLimitedError, None),
        (503, None, {}, TransientError, None),
    ],
)
def test_submit_error_mapping(
    mocked: responses.RequestsMock, status: int, payload: object, headers: dict[str, str],
    raises: type[Exception], code: ErrorCode | None,
) -> None:
    mocked.post(BASE + SUBMIT_PATH["kie_veo"], status=status, headers=headers,
                body=json.dumps(payload) if payload else "<html>down</html>")
    with pytest.raises(raises) as info:
        adapter("kie_veo").submit(get_model("veo3"), spec("veo3"), None)
    if code is not None:
        assert isinstance(info.value, PermanentError) and info.value.code == code
    if headers:
        assert isinstance(info.value, RateLimitedError) and info.value.retry_after == 3


def test_veo_submit_body(mocked: responses.RequestsMock) -> None:
    mocked.post(BASE + SUBMIT_PATH["kie_veo"], json={"code": 200, "data": {"taskId": "v1"}})
    adapter("kie_veo").submit(get_model("veo3"), spec("veo3", ["https://x/a.png"]),
                              "https://me/cb")
    sent = json.loads(mocked.calls[0].request.body or b"{}")
    assert sent["model"] == "veo3"
    assert sent["aspect_ratio"] == sent["aspectRatio"] == "16:9"
    assert sent["imageUrls"] == ["https://x/a.png"]
    assert sent["callBackUrl"] == "https://me/cb"


@pytest.mark.parametrize(
    ("model", "images", "provider_id", "field", "value"),
    [
        ("sora-2", [], "sora-2-text-to-video", "aspect_ratio", "landscape"),
        ("sora-2", ["https://x/a.png"], "sora-2-image-to-video", "image_urls",
         ["https://x/a.png"]),
        ("sora-2-pro", [], "sora-2-pro-text-to-video", "n_frames", "10"),
        ("seedance-1.5-pro", ["https://x/a.png"], "bytedance/seedance-1.5-pro", "input_urls",
         ["https://x/a.png"]),
        ("seedance-2", ["https://x/a.png"], "bytedance/seedance-2", "first_frame_url",
         "https://x/a.png"),
    ],
)
def test_market_submit_body(
    mocked: responses.RequestsMock, model: str, images: list[str], provider_id: str,
    field: str, value: object,
) -> None:
    mocked.post(BASE + SUBMIT_PATH["kie_market"], json={"code": 200, "data": {"taskId": "m1"}})
    adapter("kie_market").submit(get_model(model), spec(model, images), None)
    sent = json.loads(mocked.calls[0].request.body or b"{}")
    assert sent["model"] == provider_id
    assert sent["input"]["prompt"] == "a red fox"
    assert sent["input"][field] == value


def test_registry_lists_every_model_once() -> None:
    assert supported_models() == sorted(MODELS)
    assert {m.family for m in MODELS.values()} <= set(PROVIDERS)


@pytest.mark.parametrize(
    ("model", "aspect", "duration", "images", "fields"),
    [
        ("veo3", "16:9", 8, 2, []),
        ("veo3", "1:1", 8, 0, ["aspectRatio"]),
        ("veo3", "16:9", 5, 3, ["durationSeconds", "imageUrls"]),
        ("sora-2", "9:16", None, 1, []),
        ("seedance-2", "1:1", 10, 2, ["imageUrls"]),
    ],
)
def test_validate_options(
    model: str, aspect: str, duration: int | None, images: int, fields: list[str]
) -> None:
    problems = validate_options(get_model(model), aspect, duration, images)
    assert [f for f, _ in problems] == fields
