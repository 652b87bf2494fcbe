"""One contract, every registered family: the real adapter against its fake, over real HTTP.

Each family's fake (``videopoll/fake_provider/<family>.py``) plays the scripted scenarios in
that provider's own words; the adapter and its chain must turn them into the same verdicts:
pending → running → success with a downloadable video, failure, moderation, rate limiting,
malformed answers (never a crash), and push callbacks that verify — or are refused when forged.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from flask.testing import FlaskClient
from pydantic import SecretStr

from tests.test_kie_adapters import _closed_port, _Silent
from tests.test_kie_adapters import silent as silent  # a fixture the tests below use
from tests.test_store import make_job
from videopoll.api import create_app
from videopoll.download import stream
from videopoll.errors import (
    PermanentError,
    RateLimitedError,
    SubmitOutcomeUnknownError,
    TaskNotFoundError,
    TransientError,
)
from videopoll.fake_provider import FakeProvider, start_in_thread
from videopoll.fake_provider.core import FakeFamily
from videopoll.models import ErrorCode, GenerationSpec, PollResult, PollState, ProviderResponse
from videopoll.polling import callback_url_token
from videopoll.providers import MODELS, PROVIDERS, ModelInfo, Provider
from videopoll.runtime import Runtime, build_runtime
from videopoll.settings import Settings

FAMILIES = sorted(PROVIDERS)
URL_SECRET = "contract-url-secret"
MP4_MAGIC = b"ftyp"


@pytest.fixture(scope="module")
def fakes() -> Iterator[FakeProvider]:
    server = start_in_thread()
    yield server
    server.stop()


@pytest.fixture
def crt(settings: Settings, fakes: FakeProvider) -> Runtime:
    fakes.state.webhook_key = "kie-contract-key"
    return build_runtime(settings.model_copy(update={
        "providers": fakes.provider_settings(),
        "callback_url_secret": SecretStr(URL_SECRET),
        "public_base_url": "http://127.0.0.1:9/api"}))


def fake_for(fakes: FakeProvider, family: str) -> FakeFamily:
    return next(f for f in fakes.server.fakes if family in f.families)


def model_of(family: str) -> ModelInfo:
    return next(m for m in MODELS.values() if m.family == family)


def submit(provider: Provider, family: str, prompt: str) -> str:
    model = model_of(family)
    spec = GenerationSpec(model=model.name, prompt=prompt, aspect_ratio=model.aspect_ratios[0],
                          duration_seconds=model.default_duration)
    return provider.submit(model, spec, None)


def poll(provider: Provider, task_id: str) -> PollResult:
    return provider.normalize(provider.fetch(task_id))


def poll_until_final(provider: Provider, task_id: str, limit: int = 8) -> list[PollResult]:
    seen: list[PollResult] = []
    for _ in range(limit):
        result = poll(provider, task_id)
        seen.append(result)
        if result.state in (PollState.SUCCEEDED, PollState.FAILED) and (
                result.state is PollState.FAILED or result.output_urls):
            return seen
    raise AssertionError(f"no final answer in {limit} polls: {seen}")


def test_every_family_has_a_fake_and_a_model() -> None:
    server = start_in_thread()
    try:
        served = {family for f in server.server.fakes for family in f.families}
    finally:
        server.stop()
    assert set(FAMILIES) <= served
    assert all(any(m.family == family for m in MODELS.values()) for family in FAMILIES)


@pytest.mark.parametrize("family", FAMILIES)
def test_pending_running_then_success_with_a_video_that_downloads(
    crt: Runtime, family: str
) -> None:
    provider = crt.provider(family)
    task_id = submit(provider, family, "ok2")
    seen = poll_until_final(provider, task_id)
    assert [r.state for r in seen[:-1]] and all(
        r.state in (PollState.QUEUED, PollState.RUNNING) for r in seen[:-1])
    final = seen[-1]
    assert final.state is PollState.SUCCEEDED and final.output_urls
    url = final.output_urls[0]
    body = b"".join(stream(url, 10 * 1024 * 1024, 10, allow_private=True,
                           headers=provider.download_headers(url)))
    assert MP4_MAGIC in body[:64]


@pytest.mark.parametrize("family", FAMILIES)
def test_moderation_is_moderation_rejected(crt: Runtime, family: str) -> None:
    provider = crt.provider(family)
    final = poll_until_final(provider, submit(provider, family, "moderation1"))[-1]
    assert final.state is PollState.FAILED
    assert final.error_code is ErrorCode.MODERATION_REJECTED


@pytest.mark.parametrize("family", FAMILIES)
def test_an_upstream_failure_fails_with_a_code_that_is_not_moderation(
    crt: Runtime, family: str
) -> None:
    provider = crt.provider(family)
    final = poll_until_final(provider, submit(provider, family, "upstream1"))[-1]
    assert final.state is PollState.FAILED
    assert final.error_code not in (None, ErrorCode.MODERATION_REJECTED)


@pytest.mark.parametrize("family", FAMILIES)
def test_rate_limited_then_success(crt: Runtime, family: str) -> None:
    provider = crt.provider(family)
    task_id = submit(provider, family, "ratelimit1")
    with pytest.raises(RateLimitedError):
        poll(provider, task_id)
    assert poll_until_final(provider, task_id)[-1].state is PollState.SUCCEEDED


@pytest.mark.parametrize("family", FAMILIES)
def test_malformed_answers_are_transient_never_a_crash(crt: Runtime, family: str) -> None:
    provider = crt.provider(family)
    task_id = submit(provider, family, "flaky3")
    for _ in range(3):  # HTTP 500, an HTML 502 page, 200 with a body that is not JSON
        with pytest.raises(TransientError) as info:
            poll(provider, task_id)
        assert not isinstance(info.value, TaskNotFoundError | SubmitOutcomeUnknownError)
    assert poll_until_final(provider, task_id)[-1].state is PollState.SUCCEEDED


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("body", [
    None, [], "text", 7, {}, {"code": 200}, {"status": None}, {"data": []},
    {"code": 200, "msg": "success", "data": {"taskId": "t", "successFlag": 1,
                                             "response": {"resultUrls": ["https://x/v.mp4"]}}},
    {"code": 200, "msg": "success", "data": {"taskId": "t", "state": "success",
                                             "resultJson": "{\"resultUrls\":[]}"}},
    {"status": "succeeded", "output": 12, "state": ["x"], "done": "yes", "response": "r"},
    {"status": "SUCCEEDED", "output": [{"nested": True}], "error": {"code": []}},
])
def test_arbitrary_bodies_give_a_result_or_a_typed_fault(
    crt: Runtime, family: str, body: Any
) -> None:
    provider = crt.provider(family)
    for status in (200, 202, 400, 404, 429, 500):
        resp = ProviderResponse(http_status=status, body=body,
                                text_sample=json.dumps(body)[:500])
        try:
            result = provider.normalize(resp)
        except (TransientError, PermanentError):
            continue
        assert isinstance(result, PollResult)


KIE_FAMILIES = {"kie_veo", "kie_market", "kie_runway"}


@pytest.mark.parametrize("family", sorted(set(FAMILIES) - KIE_FAMILIES))
def test_a_kie_shaped_body_is_not_read_as_kie_by_another_family(
    crt: Runtime, family: str
) -> None:
    kie = {"code": 200, "msg": "success", "data": {
        "taskId": "t", "successFlag": 1, "state": "success",
        "response": {"resultUrls": ["https://kie.example/v.mp4"]},
        "resultJson": json.dumps({"resultUrls": ["https://kie.example/v.mp4"]})}}
    try:
        result = crt.provider(family).normalize(ProviderResponse(http_status=200, body=kie))
    except TransientError:
        return
    assert "https://kie.example/v.mp4" not in result.output_urls


@pytest.mark.parametrize("family", FAMILIES)
def test_auth_failure_is_permanent(crt: Runtime, family: str) -> None:
    provider = crt.provider(family)
    task_id = submit(provider, family, "auth")
    with pytest.raises(PermanentError) as info:
        poll(provider, task_id)
    assert info.value.code == ErrorCode.PROVIDER_AUTH_FAILED


@pytest.mark.parametrize("family", FAMILIES)
def test_an_unknown_task_is_task_not_found(crt: Runtime, family: str) -> None:
    provider = crt.provider(family)
    task_id = submit(provider, family, "notfound1")
    with pytest.raises(TaskNotFoundError):
        poll(provider, task_id)


def rebased(crt: Runtime, family: str, base_url: str) -> Provider:
    """The family's adapter, configured as in ``crt`` but sending to ``base_url``."""
    cls = PROVIDERS[family]
    config = crt.settings.provider_config(cls.config_name, cls.config_class)
    return cls(config.model_copy(update={"base_url": base_url}), timeout=0.5)


@pytest.mark.parametrize("family", FAMILIES)
def test_a_refused_connection_proves_the_submit_was_not_sent(crt: Runtime, family: str) -> None:
    provider = rebased(crt, family, f"http://127.0.0.1:{_closed_port()}")
    with pytest.raises(TransientError) as info:
        submit(provider, family, "ok")
    assert type(info.value) is TransientError  # provably not sent: safe to send again


@pytest.mark.parametrize("family", FAMILIES)
def test_a_lost_answer_leaves_the_submit_outcome_unknown(
    crt: Runtime, family: str, silent: _Silent
) -> None:
    provider = rebased(crt, family, silent.url)
    with pytest.raises(SubmitOutcomeUnknownError):
        submit(provider, family, "ok")  # it may have been accepted, and billed: never resent
    assert silent.received and silent.received[0].startswith(b"POST ")  # it did go out
    # The same fault on a status read is only transient: polling costs nothing.
    with pytest.raises(TransientError) as info:
        poll(provider, "task_1")
    assert type(info.value) is TransientError


@pytest.mark.parametrize("family", FAMILIES)
def test_submit_faults_say_whether_a_task_was_created(
    crt: Runtime, family: str, fakes: FakeProvider
) -> None:
    provider = crt.provider(family)
    before = fakes.stats()["submits"]
    with pytest.raises(SubmitOutcomeUnknownError):
        submit(provider, family, "a fox (lostreply)")  # created, then an error page
    assert fakes.stats()["submits"] == before + 1
    with pytest.raises(TransientError) as info:
        submit(provider, family, "a fox (maintenance)")  # refused before any task exists
    assert not isinstance(info.value, SubmitOutcomeUnknownError)
    assert fakes.stats()["submits"] == before + 1


@pytest.mark.parametrize("family", [f for f in FAMILIES if PROVIDERS[f].can_cancel])
def test_cancel_reaches_the_provider_and_the_task_ends(crt: Runtime, family: str,
                                                       fakes: FakeProvider) -> None:
    provider = crt.provider(family)
    task_id = submit(provider, family, "never")
    assert provider.cancel(task_id) is True
    assert task_id in fakes.stats()["canceled"]
    assert poll(provider, task_id).state is PollState.FAILED


@pytest.fixture
def api(crt: Runtime) -> Iterator[FlaskClient]:
    app = create_app(crt.settings)
    app.extensions["videopoll"] = crt
    with app.test_client() as c:
        yield c


PUSHING = [f for f in FAMILIES if PROVIDERS[f].pushes_callbacks]


def _callback(api: FlaskClient, crt: Runtime, fakes: FakeProvider, family: str,
              forged: bool) -> tuple[int, dict[str, Any], str]:
    provider = crt.provider(family)
    task_id = submit(provider, family, "never")
    job = make_job(crt, f"job_{task_id}", keys=[f"task:{family}:{task_id}"]).model_copy(
        update={"provider_task_id": task_id, "family": family, "model": model_of(family).name})
    crt.store.create(job)
    out = fake_for(fakes, family).callback(task_id, "success", forged=forged)
    assert out is not None, f"{family} pushes callbacks but its fake sends none"
    token = callback_url_token(URL_SECRET, family)
    if forged and not provider.proves_callbacks():
        token = "0" * len(token)
    params = {**out.query, **({} if provider.proves_callbacks() else {"token": token})}
    query = f"?{urlencode(params)}" if params else ""
    resp = api.post(f"/callbacks/{family}{query}", data=out.raw, headers=out.headers,
                    content_type="application/json")
    return resp.status_code, resp.get_json(), job.job_id


@pytest.mark.parametrize("family", PUSHING)
def test_a_verified_callback_wakes_the_job(api: FlaskClient, crt: Runtime,
                                           fakes: FakeProvider, family: str) -> None:
    status, body, _ = _callback(api, crt, fakes, family, forged=False)
    assert status == 200, body
    assert body["status"] == "accepted"


@pytest.mark.parametrize("family", PUSHING)
def test_a_forged_callback_is_refused_and_changes_nothing(
    api: FlaskClient, crt: Runtime, fakes: FakeProvider, family: str
) -> None:
    status, body, job_id = _callback(api, crt, fakes, family, forged=True)
    assert status == 401, body
    job = crt.store.get(job_id)
    assert job is not None and job.attempts == 0 and job.status.value == "queued"
