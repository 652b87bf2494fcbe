"""The API's edges with Flask's test client: every refusal is JSON naming the field and reason.

Each case here is refused before the job store or the broker is touched, so these run in
milliseconds; what needs a real gunicorn, Redis outage or slow socket is in
``tests/e2e/test_api_edges.py``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pydantic import SecretStr
from werkzeug.test import TestResponse

from videopoll.api import create_app
from videopoll.runtime import Runtime, build_runtime
from videopoll.settings import Settings

GOOD_POLL = {"sessionId": "user_123", "taskId": "veo_abc456", "model": "veo3", "attempt": 1}
GOOD_GEN = {"sessionId": "u", "model": "veo3", "prompt": "a cat", "aspectRatio": "16:9"}


@pytest.fixture
def app(settings: Settings) -> Flask:
    return create_app(settings.model_copy(update={"allow_private_urls": False}))


@pytest.fixture
def client(app: Flask) -> Iterator[FlaskClient]:
    with app.test_client() as c:
        yield c


def post_raw(client: FlaskClient, path: str, raw: str | bytes, **kw: Any) -> TestResponse:
    return client.post(path, data=raw, content_type="application/json", **kw)


def fields(resp: TestResponse) -> dict[str, str]:
    body = resp.get_json()
    assert body["error"] == "validation_failed", body
    return {d["field"]: d["reason"] for d in body["details"]}


@pytest.mark.parametrize(
    ("path", "body", "field", "reason_part"),
    [
        ("/webhook/poll-video", {**GOOD_POLL, "taskId": None}, "taskId", "string"),
        ("/webhook/poll-video", {k: v for k, v in GOOD_POLL.items() if k != "sessionId"},
         "sessionId", "required"),
        ("/webhook/poll-video", {**GOOD_POLL, "sessionId": "   "}, "sessionId", "blank"),
        ("/webhook/poll-video", {**GOOD_POLL, "attempt": 0}, "attempt", "greater than"),
        ("/webhook/poll-video", {**GOOD_POLL, "attempt": "x"}, "attempt", "integer"),
        ("/webhook/poll-video", {**GOOD_POLL, "model": "veo9"}, "model", "supported: "),
        ("/webhook/poll-video", {**GOOD_POLL, "callbackUrl": "not a url"}, "callbackUrl", "URL"),
        ("/jobs", {**GOOD_GEN, "prompt": "  "}, "prompt", "blank"),
        ("/jobs", {**GOOD_GEN, "prompt": "x" * 4001}, "prompt", "4000"),
        ("/jobs", {**GOOD_GEN, "aspectRatio": "4:3"}, "aspectRatio", "16:9"),
        ("/jobs", {**GOOD_GEN, "durationSeconds": 61}, "durationSeconds", "less than"),
        ("/jobs", {**GOOD_GEN, "durationSeconds": 5}, "durationSeconds", "8"),
        ("/jobs", {**GOOD_GEN, "aspectRatio": "1:1"}, "aspectRatio", ""),
        ("/jobs", {**GOOD_GEN, "model": "nope"}, "model", "veo3"),
        ("/jobs", {**GOOD_GEN, "imageUrls": ["ftp://x/y.png"]}, "imageUrls.0", "URL"),
        ("/jobs", {**GOOD_GEN, "imageUrls": [f"https://cdn.example/{i}.png" for i in range(4)]},
         "imageUrls", "at most 3"),
        ("/jobs", {**GOOD_GEN, "surprise": 1}, "surprise", "not a known field"),
        ("/jobs", [1, 2], "body", "object"),
        # strict types: a boolean is not a number of attempts or seconds
        ("/webhook/poll-video", {**GOOD_POLL, "attempt": True}, "attempt", "integer"),
        ("/jobs", {**GOOD_GEN, "durationSeconds": True}, "durationSeconds", "integer"),
        # chatId: a Telegram id (64-bit int) or a short handle, nothing bigger
        ("/webhook/poll-video", {**GOOD_POLL, "chatId": "c" * 65}, "chatId", "64"),
        ("/webhook/poll-video", {**GOOD_POLL, "chatId": 2**70}, "chatId", "less than"),
        ("/webhook/poll-video", {**GOOD_POLL, "chatId": True}, "chatId", ""),
        # taskId: only the characters providers issue, so no NUL, slash or space
        ("/webhook/poll-video", {**GOOD_POLL, "taskId": "veo\x00abc"}, "taskId", "A-Za-z0-9"),
        ("/webhook/poll-video", {**GOOD_POLL, "taskId": "../../etc"}, "taskId", "'..'"),
        ("/webhook/poll-video", {**GOOD_POLL, "taskId": "ops/../../etc"}, "taskId", "'..'"),
        ("/webhook/poll-video", {**GOOD_POLL, "taskId": "a b"}, "taskId", "A-Za-z0-9"),
        # metadata is kept on the record and read back on every poll: bounded
        ("/webhook/poll-video", {**GOOD_POLL, "metadata": {"x": "y" * 9000}}, "metadata",
         "8192 bytes"),
        ("/webhook/poll-video", {**GOOD_POLL, "metadata": {f"k{i}": i for i in range(101)}},
         "metadata", "100 keys"),
    ],
)
def test_invalid_fields_get_422_with_field_and_reason(
    client: FlaskClient, path: str, body: Any, field: str, reason_part: str
) -> None:
    resp = client.post(path, json=body)
    assert resp.status_code == 422, resp.text
    problems = fields(resp)
    assert field in problems, problems
    assert reason_part in problems[field]


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize(("depth", "field"), [(11, "metadata"), (31, "metadata"),
                                              (200, "body"), (255, "body")])
def test_deep_metadata_is_refused_not_stored(client: FlaskClient, depth: int, field: str) -> None:
    resp = client.post("/webhook/poll-video", json={**GOOD_POLL, "metadata": nested(depth)})
    assert resp.status_code == 422, resp.text
    assert "levels" in fields(resp)[field]


def test_metadata_ten_levels_deep_passes_validation(client: FlaskClient) -> None:
    # an unknown model stops the request after the body is validated, before the store
    resp = client.post("/webhook/poll-video",
                       json={**GOOD_POLL, "model": "veo9", "metadata": nested(10)})
    assert set(fields(resp)) == {"model"}


@pytest.mark.parametrize(
    "raw",
    ['{"sessionId": "u", "metadata": ' + '{"a": ' * 5000 + "1" + "}" * 5000 + "}",
     "[" * 30_000 + "]" * 30_000],
)
def test_deeper_body_than_the_parser_can_follow_is_4xx(client: FlaskClient, raw: str) -> None:
    resp = post_raw(client, "/webhook/poll-video", raw)
    assert resp.status_code == 422, resp.text
    assert "levels" in fields(resp)["body"]


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ('{"sessionId": "\\ud800", "taskId": "t1", "model": "veo3"}', "sessionId"),
        ('{"sessionId": "u", "taskId": "t1", "model": "veo3", "metadata": {"n": "a\\udfffb"}}',
         "metadata.n"),
        ('{"sessionId": "u", "taskId": "t1", "model": "veo3", "metadata": {"\\ud800": 1}}',
         "metadata.\\ud800"),
    ],
)
def test_lone_surrogate_is_422_naming_the_field(
    client: FlaskClient, raw: str, field: str
) -> None:
    resp = post_raw(client, "/webhook/poll-video", raw)
    assert resp.status_code == 422, resp.text
    problems = fields(resp)
    assert field in problems, problems
    assert "surrogate" in problems[field]


@pytest.mark.parametrize("raw", [
    b'{"sessionId": "\xed\xa0\x80", "taskId": "t1", "model": "veo3"}',  # a surrogate, encoded
    b'{"sessionId": "\xff", "taskId": "t1", "model": "veo3"}',
])
def test_body_that_is_not_utf8_is_400(client: FlaskClient, raw: bytes) -> None:
    """Only an escape can bring a lone surrogate in: its UTF-8 encoding is refused whole."""
    resp = post_raw(client, "/webhook/poll-video", raw)
    assert (resp.status_code, resp.get_json()["error"]) == (400, "malformed_json"), resp.text


def test_null_body_is_not_an_object(client: FlaskClient) -> None:
    resp = post_raw(client, "/webhook/poll-video", "null")
    assert resp.status_code == 422, resp.text
    assert fields(resp) == {"body": "must be a JSON object"}


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ('{"sessionId": "u", "taskId": "t1", "model": "veo3", "attempt": ' + "9" * 5000 + "}",
         "attempt"),
        ('{"sessionId": "u", "taskId": "t1", "model": "veo3", "metadata": {"n": '
         + "1" * 5000 + "}}", "metadata.n"),
        ('{"sessionId": "u", "taskId": "t1", "model": "veo3", "metadata": {"n": 1e999}}',
         "metadata.n"),
    ],
)
def test_huge_number_is_422_naming_the_field(client: FlaskClient, raw: str, field: str) -> None:
    resp = post_raw(client, "/webhook/poll-video", raw)
    assert resp.status_code == 422, resp.text
    assert "number" in fields(resp)[field]


@pytest.mark.parametrize("raw", ['{"sessionId": NaN}', '{"sessionId": ', "[1,]"])
def test_malformed_json_is_400(client: FlaskClient, raw: str) -> None:
    resp = post_raw(client, "/jobs", raw)
    assert (resp.status_code, resp.get_json()["error"]) == (400, "malformed_json")


def test_wrong_content_type_is_415(client: FlaskClient) -> None:
    resp = client.post("/webhook/poll-video", data="sessionId=u",
                       content_type="application/x-www-form-urlencoded")
    assert (resp.status_code, resp.get_json()["error"]) == (415, "unsupported_media_type")


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/webhook/poll-video", {**GOOD_POLL, "callbackUrl": "http://127.0.0.1:8000/x"},
         "callbackUrl"),
        ("/webhook/poll-video", {**GOOD_POLL, "callbackUrl": "http://localhost/hook"},
         "callbackUrl"),
        ("/webhook/poll-video", {**GOOD_POLL, "callbackUrl": "http://169.254.169.254/latest"},
         "callbackUrl"),
        ("/jobs", {**GOOD_GEN, "imageUrls": ["http://10.0.0.7/a.png"]}, "imageUrls.0"),
        ("/jobs", {**GOOD_GEN, "imageUrls": ["http://192.168.1.1/a.png"]}, "imageUrls.0"),
    ],
)
def test_private_urls_are_refused_at_submit(
    client: FlaskClient, path: str, body: dict[str, Any], field: str
) -> None:
    resp = client.post(path, json=body)
    assert resp.status_code == 422, resp.text
    assert "non-public" in fields(resp)[field]


def test_idempotency_key_length_is_checked(client: FlaskClient) -> None:
    resp = client.post("/webhook/poll-video", json={**GOOD_POLL, "model": "veo9"},
                       headers={"Idempotency-Key": "k" * 201})
    assert "Idempotency-Key" in fields(resp)


# authentication ---------------------------------------------------------------------------


@pytest.fixture
def secured(settings: Settings) -> Iterator[FlaskClient]:
    app = create_app(settings.model_copy(update={"api_token": SecretStr("s3cret")}))
    with app.test_client() as c:
        yield c


@pytest.mark.parametrize("header", ["Bearer s3cret", "bearer s3cret", "BEARER  s3cret"])
def test_bearer_scheme_is_case_insensitive(secured: FlaskClient, header: str) -> None:
    resp = secured.post("/webhook/poll-video", json={**GOOD_POLL, "model": "veo9"},
                        headers={"Authorization": header})
    assert resp.status_code == 422, resp.text  # past authentication, stopped at validation


@pytest.mark.parametrize("header", ["Bearer nope", "Basic s3cret", "s3cret", "Bearer"])
def test_wrong_credentials_are_401(secured: FlaskClient, header: str) -> None:
    resp = secured.post("/webhook/poll-video", json=GOOD_POLL, headers={"Authorization": header})
    assert (resp.status_code, resp.get_json()["error"]) == (401, "unauthorized")


@pytest.mark.parametrize("remote", ["127.0.0.1", "::1", "::ffff:127.0.0.1"])
def test_loopback_callers_pass_without_token(client: FlaskClient, remote: str) -> None:
    resp = client.post("/webhook/poll-video", json={**GOOD_POLL, "model": "veo9"},
                       environ_base={"REMOTE_ADDR": remote})
    assert resp.status_code == 422, resp.text


@pytest.mark.parametrize(
    ("remote", "headers", "words"),
    [
        ("10.1.2.3", {}, "loopback"),
        ("::ffff:10.1.2.3", {}, "loopback"),
        ("127.0.0.1", {"X-Forwarded-For": "203.0.113.9"}, "proxy"),
        ("127.0.0.1", {"Forwarded": "for=203.0.113.9"}, "proxy"),
    ],
)
def test_without_token_only_direct_loopback_callers_pass(
    client: FlaskClient, remote: str, headers: dict[str, str], words: str
) -> None:
    resp = client.post("/webhook/poll-video", json=GOOD_POLL, headers=headers,
                       environ_base={"REMOTE_ADDR": remote})
    assert resp.status_code == 401, resp.text
    body = resp.get_json()
    assert body["error"] == "unauthorized"
    assert words in body["message"] and "API_TOKEN" in body["message"]


# outages -----------------------------------------------------------------------------------


@pytest.fixture
def no_redis(settings: Settings) -> Runtime:
    return build_runtime(settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"}))


def test_store_down_is_503_with_retry_after(settings: Settings, no_redis: Runtime) -> None:
    app = create_app(settings, runtime=no_redis)
    with app.test_client() as c:
        resp = c.get("/jobs/job_abc")
        assert resp.status_code == 503, resp.text
        assert resp.headers["Retry-After"].isdigit()
        assert resp.get_json()["error"] == "store_unavailable"
        created = c.post("/webhook/poll-video", json=GOOD_POLL,
                         headers={"Idempotency-Key": "k1"})
        assert created.status_code == 503, created.text
        assert "Retry-After" in created.headers
        assert "same Idempotency-Key" in json.loads(created.data)["message"]


# idempotency with a token: the token holder is the caller ------------------------------------


def test_with_a_token_the_key_belongs_to_the_token_holder(settings: Settings) -> None:
    """Two sessions behind one token are one caller: a reused key with another body is 422."""
    app = create_app(settings.model_copy(update={"api_token": SecretStr("s3cret")}))
    auth = {"Authorization": "Bearer s3cret", "Idempotency-Key": "order-1"}
    with app.test_client() as c:
        first = c.post("/webhook/poll-video", json={**GOOD_POLL, "taskId": "veo_ok1_a"},
                       headers=auth)
        same = c.post("/webhook/poll-video", json={**GOOD_POLL, "taskId": "veo_ok1_a"},
                      headers=auth)
        other = c.post("/webhook/poll-video",
                       json={**GOOD_POLL, "sessionId": "someone", "taskId": "veo_ok1_b"},
                       headers=auth)
    assert (first.status_code, same.status_code) == (202, 200), same.text
    assert same.get_json()["jobId"] == first.get_json()["jobId"]
    assert other.status_code == 422, other.text
    assert fields(other) == {"Idempotency-Key": "was used with a different request body"}


def test_models_lists_every_model_with_its_limits(client: FlaskClient) -> None:
    models = {m["model"]: m for m in client.get("/models").get_json()["models"]}
    assert {"veo3", "veo3_fast", "sora-2", "seedance-1.5-pro"} <= set(models)
    assert models["veo3"] == {"model": "veo3", "id": "kie_veo:veo3", "family": "kie_veo",
                              "providerModel": "veo3", "durations": [8],
                              "aspectRatios": ["16:9", "9:16"], "maxImages": 2,
                              "defaultDuration": 8, "pushCallbacks": True, "cancel": False}
    # a model two families serve is listed once per family, by the name that reaches it
    assert models["kie_market:kling-2.6"]["family"] == "kie_market"
    assert models["kling-2.6"]["family"] == "kling"
    families = {m["family"] for m in models.values()}
    assert len(families) >= 10 and {"openai", "gemini", "vertex", "replicate", "fal", "runway",
                                    "luma", "ark", "minimax", "kling"} <= families


def test_an_unknown_model_is_422_listing_the_choices(client: FlaskClient) -> None:
    resp = client.post("/jobs", json={**GOOD_GEN, "model": "veo9"})
    assert resp.status_code == 422
    [detail] = resp.get_json()["details"]
    assert detail["field"] == "model"
    for choice in ("veo3", "ray-2", "hailuo-02", "openai:sora-2", "fal-ai/veo3"):
        assert choice in detail["reason"]


def test_a_qualified_name_reaches_the_family_that_serves_it(app: Flask) -> None:
    with app.test_client() as c:
        resp = c.post("/jobs", json={**GOOD_GEN, "model": "kie_market:kling-2.6",
                                     "durationSeconds": 5})
    assert resp.status_code == 202, resp.text
    job = app.extensions["videopoll"].store.get(resp.get_json()["jobId"])
    assert (job.model, job.family) == ("kling-2.6", "kie_market")
