"""The Vertex AI Veo adapter: the request out (``responses``), its token handling, the verdict
on every recorded answer shape (tests/fixtures/vertex), and its fake over real HTTP.

Fixture labels follow providers.md §5.2: [DOC] documented shape, [COMPOSED] written from the
documented field lists, [3P] seen in third-party integrations only.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from pydantic import ValidationError

from videopoll.errors import (
    PermanentError,
    RateLimitedError,
    SubmitOutcomeUnknownError,
    TaskNotFoundError,
    TransientError,
)
from videopoll.fake_provider import FakeProvider, start_in_thread
from videopoll.models import ErrorCode, GenerationSpec, PollState, ProviderResponse
from videopoll.providers import get_model
from videopoll.providers.base import Provider
from videopoll.providers.google import VertexProvider
from videopoll.providers.google.vertex import VertexConfig, gcs_download_url
from videopoll.providers.http import MAX_RESPONSE_BYTES
from videopoll.settings import Settings

BASE = "https://vertex.test"
TOKEN = "ya29.static-token"
FIXTURES = Path(__file__).parent / "fixtures" / "vertex"
MODELS = f"{BASE}/v1/projects/my-proj/locations/us-central1/publishers/google/models"
SUBMIT = f"{MODELS}/veo-3.1-generate-001:predictLongRunning"
OP = ("projects/my-proj/locations/us-central1/publishers/google/models/"
      "veo-3.1-fast-generate-001/operations/op-123")
STORAGE = "https://storage.googleapis.com"

S, R, F = PollState.SUCCEEDED, PollState.RUNNING, PollState.FAILED


def adapter(**fields: Any) -> Provider:
    return VertexProvider.with_config(**{
        "base_url": BASE, "api_key": TOKEN, "project": "my-proj",
        "storage_uri": "gs://my-bucket/out", **fields})


def submit(provider: Provider, model: str = "veo-3.1-generate-001", duration: int = 4) -> str:
    spec = GenerationSpec(model=model, prompt="a red fox", aspect_ratio="16:9",
                          duration_seconds=duration)
    return provider.submit(get_model(model), spec, None)


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def token_command(tmp_path: Path, body: str) -> str:
    """A token command that counts its runs in ``runs`` beside it."""
    script = tmp_path / "token.py"
    script.write_text(f"import pathlib, sys, time\n"
                      f"p = pathlib.Path({str(tmp_path / 'runs')!r})\n"
                      f"p.write_text(str(int(p.read_text() or 0) + 1) if p.exists() else '1')\n"
                      f"{body}\n")
    return f"{sys.executable} {script}"


# --- submit ------------------------------------------------------------------------------

def test_a_submit_is_the_documented_request_with_a_bearer_token(
    mocked: responses.RequestsMock
) -> None:
    mocked.post(SUBMIT, json={"name": OP})
    assert submit(adapter()) == OP
    call = mocked.calls[0]
    assert call.request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert json.loads(call.request.body or b"") == {
        "instances": [{"prompt": "a red fox"}],
        "parameters": {"aspectRatio": "16:9", "durationSeconds": 4, "resolution": "720p",
                       "sampleCount": 1, "generateAudio": True,
                       "storageUri": "gs://my-bucket/out"}}


def test_without_a_storage_uri_none_is_sent_and_a_warning_says_why(
    mocked: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    mocked.post(SUBMIT, json={"name": OP})
    with caplog.at_level(logging.WARNING):
        submit(adapter(storage_uri=""))
    assert "storageUri" not in json.loads(mocked.calls[0].request.body or b"")["parameters"]
    assert "VERTEX_STORAGE_URI" in caplog.text


def test_the_base_url_follows_the_location() -> None:
    assert VertexProvider.with_config(location="europe-west4").base_url == (
        "https://europe-west4-aiplatform.googleapis.com")
    assert VertexProvider.with_config(location="global").base_url == (
        "https://aiplatform.googleapis.com")
    assert adapter().base_url == BASE
    with pytest.raises(ValidationError):
        VertexConfig.model_validate({"location": "us-central1/../x"})
    with pytest.raises(ValidationError):
        VertexConfig.model_validate({"project": "a/b"})


def test_no_project_fails_before_anything_is_sent(mocked: responses.RequestsMock) -> None:
    with pytest.raises(PermanentError) as info:
        submit(adapter(project=""))
    assert "VERTEX_PROJECT" in info.value.provider_message


@pytest.mark.parametrize(("name", "status", "code"), [
    ("http_401_unauthenticated", 401, ErrorCode.PROVIDER_AUTH_FAILED),  # [3P]
    ("http_403_permission_denied", 403, ErrorCode.PROVIDER_AUTH_FAILED),  # [3P]
    ("http_400_person_approval", 400, ErrorCode.MODERATION_REJECTED),  # [DOC] §5.2
    ("http_400_invalid_argument", 400, ErrorCode.VALIDATION_FAILED),  # [COMPOSED]
])
def test_submit_refusals_are_permanent(mocked: responses.RequestsMock, name: str, status: int,
                                       code: ErrorCode) -> None:
    mocked.post(SUBMIT, json=fixture(name), status=status)
    with pytest.raises(PermanentError) as info:
        submit(adapter())
    assert info.value.code == code


def test_submit_quota_is_rate_limited(mocked: responses.RequestsMock) -> None:
    mocked.post(SUBMIT, json=fixture("http_429_resource_exhausted"), status=429)
    with pytest.raises(RateLimitedError):
        submit(adapter())


@pytest.mark.parametrize(("status", "body"), [
    (500, json.dumps(fixture("http_500_internal"))), (200, "<html>"), (200, "{}"),
])
def test_an_answer_that_may_hide_a_task_leaves_the_outcome_unknown(
    mocked: responses.RequestsMock, status: int, body: str
) -> None:
    mocked.post(SUBMIT, body=body, status=status)
    with pytest.raises(SubmitOutcomeUnknownError):
        submit(adapter())


# --- the access token --------------------------------------------------------------------

def test_a_token_command_is_run_once_and_its_token_kept(
    mocked: responses.RequestsMock, tmp_path: Path
) -> None:
    provider = adapter(api_key=None, token_command=token_command(tmp_path, "print('tok-cmd')"))
    mocked.post(SUBMIT, json={"name": OP})
    mocked.post(f"{MODELS}/veo-3.1-fast-generate-001:fetchPredictOperation", json={"name": OP})
    submit(provider)
    provider.fetch(OP)
    assert [c.request.headers["Authorization"] for c in mocked.calls] == ["Bearer tok-cmd"] * 2
    assert (tmp_path / "runs").read_text() == "1"


def test_a_401_forgets_the_token_so_the_next_call_runs_the_command_again(
    mocked: responses.RequestsMock, tmp_path: Path
) -> None:
    provider = adapter(api_key=None, token_command=token_command(tmp_path, "print('t')"))
    url = f"{MODELS}/veo-3.1-fast-generate-001:fetchPredictOperation"
    mocked.post(url, json=fixture("http_401_unauthenticated"), status=401)
    provider.fetch(OP)
    provider.fetch(OP)
    assert (tmp_path / "runs").read_text() == "2"


def test_a_failing_token_command_is_an_auth_failure(tmp_path: Path) -> None:
    provider = adapter(token_command=token_command(tmp_path, "sys.exit('not logged in')"))
    with pytest.raises(PermanentError) as info:
        submit(provider)
    assert info.value.code == ErrorCode.PROVIDER_AUTH_FAILED
    assert "not logged in" in info.value.provider_message
    with pytest.raises(PermanentError):  # a poll: fetch answers 401 itself, normalize judges
        provider.normalize(provider.fetch(OP))
    missing = adapter(token_command="/nonexistent/gcloud auth print-access-token")
    with pytest.raises(PermanentError):
        submit(missing)


def test_a_slow_token_command_is_transient(tmp_path: Path) -> None:
    provider = adapter(token_timeout=0.2,
                       token_command=token_command(tmp_path, "time.sleep(5)"))
    with pytest.raises(TransientError) as info:
        submit(provider)
    assert type(info.value) is TransientError  # nothing was sent: safe to try again


# --- status ------------------------------------------------------------------------------

def test_fetch_posts_the_operation_name_to_its_own_models_endpoint(
    mocked: responses.RequestsMock
) -> None:
    url = f"{MODELS}/veo-3.1-fast-generate-001:fetchPredictOperation"  # the model in OP
    mocked.post(url, json={"name": OP, "done": False},
                match=[responses.matchers.json_params_matcher({"operationName": OP})])
    resp = adapter().fetch(OP)
    assert (resp.http_status, resp.body) == (200, {"name": OP, "done": False})
    assert mocked.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_an_id_naming_no_model_is_asked_of_the_first_model(
    mocked: responses.RequestsMock
) -> None:
    mocked.post(f"{MODELS}/veo-3.1-generate-001:fetchPredictOperation",
                json=fixture("http_404_not_found"), status=404)
    with pytest.raises(TaskNotFoundError):
        provider = adapter()
        provider.normalize(provider.fetch("op-123"))


def test_an_inline_video_too_large_to_read_is_a_success_without_url(
    mocked: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    mocked.post(f"{MODELS}/veo-3.1-fast-generate-001:fetchPredictOperation",
                body="x" * (MAX_RESPONSE_BYTES + 10))
    provider = adapter(storage_uri="")
    with caplog.at_level(logging.WARNING):
        result = provider.normalize(provider.fetch(OP))
    assert (result.state, result.output_urls) == (S, [])
    assert "VERTEX_STORAGE_URI" in caplog.text


def _doc_url(bucket: str, name: str) -> str:
    return f"{STORAGE}/download/storage/v1/b/{bucket}/o/{name}?alt=media"


DOC_URL = _doc_url("BUCKET_NAME", "TIMESTAMPED_FOLDER%2Fsample_0.mp4")


@pytest.mark.parametrize(("name", "state", "url", "code"), [
    pytest.param("pending_name_only", R, None, None, id="COMPOSED-pending_name_only"),
    pytest.param("pending_done_false", R, None, None, id="COMPOSED-pending_done_false"),
    pytest.param("done_gcs", S, DOC_URL, None, id="DOC-done_gcs"),
    pytest.param("done_gcs_two_videos", S, _doc_url("my-bucket", "out%2F1234%2Fsample_0.mp4"),
                 None, id="COMPOSED-done_gcs_two_videos"),
    pytest.param("done_inline_bytes", S, None, None, id="3P-done_inline_bytes"),
    pytest.param("done_no_videos", S, None, None, id="COMPOSED-done_no_videos"),
    pytest.param("done_bad_gcs_uri", S, None, None, id="COMPOSED-done_bad_gcs_uri"),
    pytest.param("rai_filtered", F, None, ErrorCode.MODERATION_REJECTED,
                 id="DOC-rai_filtered"),
    pytest.param("rai_filtered_count_only", F, None, ErrorCode.MODERATION_REJECTED,
                 id="DOC-rai_filtered_count_only"),
    pytest.param("error_person_approval", F, None, ErrorCode.MODERATION_REJECTED,
                 id="DOC-error_person_approval"),
    pytest.param("error_child_generation", F, None, ErrorCode.MODERATION_REJECTED,
                 id="DOC-error_child_generation"),
    pytest.param("error_deadline_exceeded", F, None, ErrorCode.PROVIDER_TIMEOUT,
                 id="3P-error_deadline_exceeded"),
    pytest.param("error_invalid_argument", F, None, ErrorCode.VALIDATION_FAILED,
                 id="DOC-error_invalid_argument"),
    pytest.param("error_internal", F, None, ErrorCode.UNKNOWN_PROVIDER_ERROR,
                 id="COMPOSED-error_internal"),
])
def test_every_recorded_operation_shape(name: str, state: PollState, url: str | None,
                                        code: ErrorCode | None) -> None:
    result = adapter().normalize(ProviderResponse(http_status=200, body=fixture(name)))
    assert result.state is state
    assert (result.output_urls[0] if result.output_urls else None) == url
    assert result.error_code == code


def test_an_inline_only_answer_warns_to_set_the_storage_uri(
    caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        adapter().normalize(ProviderResponse(http_status=200,
                                             body=fixture("done_inline_bytes")))
    assert "VERTEX_STORAGE_URI" in caplog.text


@pytest.mark.parametrize(("name", "status", "error"), [
    ("http_429_resource_exhausted", 429, RateLimitedError),
    ("http_404_not_found", 404, TaskNotFoundError),
    ("http_500_internal", 500, TransientError),
])
def test_status_http_errors(name: str, status: int, error: type[Exception]) -> None:
    with pytest.raises(error):
        adapter().normalize(ProviderResponse(http_status=status, body=fixture(name)))


@pytest.mark.parametrize(("name", "status"), [("http_401_unauthenticated", 401),
                                              ("http_403_permission_denied", 403)])
def test_status_auth_failures_are_permanent(name: str, status: int) -> None:
    with pytest.raises(PermanentError) as info:
        adapter().normalize(ProviderResponse(http_status=status, body=fixture(name)))
    assert info.value.code == ErrorCode.PROVIDER_AUTH_FAILED


def test_gs_uris_become_storage_download_urls() -> None:
    assert gcs_download_url("gs://b/dir/sub dir/v.mp4", "http://127.0.0.1:9/st") == (
        "http://127.0.0.1:9/st/download/storage/v1/b/b/o/dir%2Fsub%20dir%2Fv.mp4?alt=media")
    for bad in ("gs://bucket-only", "s3://b/o", "https://b/o", "gs:///o"):
        assert gcs_download_url(bad, STORAGE) is None


# --- downloads, callbacks, settings ------------------------------------------------------

def test_download_headers_give_the_token_to_the_storage_origin_only() -> None:
    provider = adapter()
    assert provider.download_headers(DOC_URL) == {"Authorization": f"Bearer {TOKEN}"}
    assert provider.download_headers(f"{BASE}/v1/x") == {}
    assert provider.download_headers("https://cdn.example/v.mp4") == {}


def test_no_callbacks_no_cancel_and_settings_from_the_environment(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = adapter()
    assert not provider.pushes_callbacks and not provider.can_cancel
    assert provider.cancel(OP) is False
    monkeypatch.setenv("VERTEX_PROJECT", "env-proj")
    monkeypatch.setenv("VERTEX_LOCATION", "asia-northeast1")
    monkeypatch.setenv("VERTEX_STORAGE_URI", "gs://env-bucket/v")
    config = Settings().provider_config("vertex", VertexProvider.config_class)
    assert isinstance(config, VertexConfig)
    assert (config.project, config.location, config.storage_uri) == (
        "env-proj", "asia-northeast1", "gs://env-bucket/v")
    assert VertexProvider(config).base_url == "https://asia-northeast1-aiplatform.googleapis.com"
    assert get_model("veo-3.1-fast-generate-001").family == "vertex"


# --- the fake, over real HTTP ------------------------------------------------------------

@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeProvider]:
    server = start_in_thread()
    yield server
    server.stop()


def test_the_fake_wants_the_token_and_serves_the_video_from_storage(
    fake_server: FakeProvider
) -> None:
    config = fake_server.fake("vertex").config(fake_server.server.base_url)
    provider = VertexProvider.with_config(**config)
    task = submit(provider, "veo-3.1-fast-generate-001")
    assert "/models/veo-3.1-fast-generate-001/operations/vertex_" in task
    fetch = f"{config['base_url']}/v1/{task.split('/operations/')[0]}:fetchPredictOperation"
    assert requests.post(fetch, json={"operationName": task}, timeout=5).status_code == 401
    seen = [provider.normalize(provider.fetch(task)) for _ in range(3)]  # ok2: 2 running
    assert [r.state for r in seen] == [R, R, S]
    url = seen[-1].output_urls[0]
    assert url.startswith(f"{config['storage_base_url']}/download/storage/v1/b/fake-bucket/o/")
    assert requests.get(url, timeout=5).status_code == 401
    answer = requests.get(url, headers=provider.download_headers(url), timeout=5)
    assert answer.status_code == 200 and b"ftyp" in answer.content[:64]


def test_the_fake_answers_inline_without_a_storage_uri(fake_server: FakeProvider) -> None:
    config = fake_server.fake("vertex").config(fake_server.server.base_url)
    provider = VertexProvider.with_config(**{**config, "storage_uri": ""})
    task = submit(provider, duration=8)
    seen = [provider.normalize(provider.fetch(task)) for _ in range(4)]
    assert seen[-1].state is S and seen[-1].output_urls == []
