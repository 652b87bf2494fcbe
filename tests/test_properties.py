"""Hostile input, generated: whatever JSON arrives, every parser answers a value or a typed error.

Provider status answers (every registered family), push callbacks (every family's parser and
the HTTP route), and request bodies (the n8n webhook and generate) are fed arbitrary JSON and
headers by ``hypothesis``. A result, a typed fault (``TransientError``, ``PermanentError``,
``CallbackRejected``) or a 4xx is fine; an exception or a 5xx is a bug.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from videopoll.api import create_app
from videopoll.errors import CallbackRejected, PermanentError, TransientError
from videopoll.models import GenerateRequest, PollResult, PollVideoRequest, ProviderResponse
from videopoll.providers import PROVIDERS
from videopoll.providers.base import CallbackOutcome, CallbackRequest, Provider
from videopoll.runtime import Runtime, build_runtime
from videopoll.settings import Settings

FAMILIES = sorted(PROVIDERS)
PROPS = settings(max_examples=150, deadline=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture])

_scalars = (st.none() | st.booleans() | st.integers(-2**40, 2**40)
            | st.floats(allow_nan=False) | st.text(max_size=30))
# Keys providers use, so generated bodies reach deep into the parsers, not only their guards.
_keys = st.sampled_from([
    "code", "msg", "message", "data", "status", "state", "successFlag", "response",
    "resultUrls", "resultJson", "failCode", "failMsg", "errorCode", "errorMessage", "info",
    "output", "error", "id", "task_id", "taskId", "task_status", "task_result", "videos", "url",
    "video", "video_url", "content", "done", "name", "generateVideoResponse",
    "generatedSamples", "uri", "raiMediaFilteredCount", "assets", "failure", "failureCode",
    "progress", "base_resp", "status_code", "file_id", "file", "download_url", "request_id",
    "payload", "type", "detail", "videoInfo", "videoUrl", "expireFlag", "challenge",
]) | st.text(max_size=8)
json_values = st.recursive(
    _scalars | st.sampled_from(["https://cdn.example/v.mp4", "success", "SUCCEEDED",
                                "completed", "failed", "Fail", "succeed", "1", "[]"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=6),
    max_leaves=30,
)


@pytest.fixture
def prt(settings: Settings) -> Runtime:
    return build_runtime(settings)


def _provider(rt: Runtime, family: str) -> Provider:
    return rt.provider(family)


@pytest.mark.parametrize("family", FAMILIES)
@PROPS
@given(body=json_values, status=st.sampled_from([200, 201, 202, 400, 404, 422, 429, 500]))
def test_any_status_answer_is_a_result_or_a_typed_fault(
    prt: Runtime, family: str, body: Any, status: int
) -> None:
    resp = ProviderResponse(http_status=status, body=body, text_sample=json.dumps(body)[:500])
    try:
        result = _provider(prt, family).normalize(resp)
    except (TransientError, PermanentError):
        return
    assert isinstance(result, PollResult)
    assert all(url.startswith(("http://", "https://")) for url in result.output_urls)


_headers = st.dictionaries(
    st.sampled_from(["x-webhook-timestamp", "x-webhook-signature", "webhook-id",
                     "webhook-timestamp", "webhook-signature", "x-fal-webhook-request-id",
                     "x-fal-webhook-user-id", "x-fal-webhook-timestamp",
                     "x-fal-webhook-signature", "content-type"]),
    st.text(max_size=40) | st.sampled_from(["1800000000", "v1,AAAA", "00ff"]), max_size=6)


@pytest.mark.parametrize("family", [f for f in FAMILIES if PROVIDERS[f].pushes_callbacks])
@PROPS
@given(body=json_values, headers=_headers, query=st.dictionaries(
    st.sampled_from(["token", "app"]), st.text(max_size=20), max_size=2))
def test_any_callback_is_an_outcome_or_a_rejection(
    prt: Runtime, family: str, body: Any, headers: dict[str, str], query: dict[str, str]
) -> None:
    raw = json.dumps(body).encode()
    req = CallbackRequest(raw=raw, body=body, headers=headers, query=query, now=1_800_000_000)
    try:
        outcome = _provider(prt, family).callback(req)
    except CallbackRejected as exc:
        assert exc.status in (400, 401, 404)
        return
    assert isinstance(outcome, CallbackOutcome)
    assert outcome.task_id is None or (isinstance(outcome.task_id, str) and outcome.task_id)


@PROPS
@given(body=json_values)
def test_any_request_body_validates_or_is_a_validation_error(body: Any) -> None:
    for model in (PollVideoRequest, GenerateRequest):
        try:
            model.model_validate(body)
        except ValidationError:
            continue


@pytest.fixture
def client(settings: Settings) -> Iterator[FlaskClient]:
    app = create_app(settings)
    with app.test_client() as c:
        yield c


@PROPS
@given(body=json_values, path=st.sampled_from([
    "/webhook/poll-video", "/jobs", *[f"/callbacks/{f}" for f in FAMILIES], "/callbacks/nope",
    "/telegram/webhook"]))
def test_no_body_makes_the_api_answer_5xx(client: FlaskClient, body: Any, path: str) -> None:
    resp = client.post(path, data=json.dumps(body), content_type="application/json")
    assert resp.status_code < 500, (path, body, resp.get_data(as_text=True))
    assert resp.is_json
