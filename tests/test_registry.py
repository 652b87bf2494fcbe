"""Adding a provider family is its module and one registry line: nothing else changes.

The toy family below is everything a new provider needs: an adapter with its own answer
shape, and a fake that plays it. Registered with one line each (here by ``monkeypatch``), a
job submitted for its model runs end to end through the unchanged engine: the API's model
lookup, the poller, the rate limiter, the delivery download.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from tests.test_polling import drive_from
from videopoll import providers
from videopoll.fake_provider import server as fake_server
from videopoll.fake_provider.core import FakeFamily, FakeReply, FakeRequest, reply
from videopoll.models import (
    GenerateRequest,
    GenerationSpec,
    PollResult,
    PollState,
    ProviderResponse,
)
from videopoll.normalizers import LAST_RESORT, Normalizer, guarded, run_chain, sample_of
from videopoll.providers.base import ModelInfo, Provider
from videopoll.providers.fields import as_str, dig, http_urls
from videopoll.providers.http import http_error, task_id_from
from videopoll.runtime import Runtime, build_runtime
from videopoll.settings import Settings
from videopoll.submission import generate_job_record


class ToyJobNormalizer(Normalizer):
    """``{"job": "…", "phase": "wait|work|done|fail", "video": "…"}``."""

    name = "toy_job"

    def parse(self, body: Any) -> PollResult | None:
        phase = as_str(dig(body, "phase"))
        if not phase:
            return None
        if phase == "done":
            return self.result(PollState.SUCCEEDED, output_urls=http_urls(dig(body, "video")))
        if phase == "fail":
            return self.result(PollState.FAILED, provider_message=as_str(dig(body, "why")))
        return self.result(PollState.QUEUED if phase == "wait" else PollState.RUNNING)


class ToyProvider(Provider):
    family = "toy"
    config_name = "toy"
    models = (ModelInfo(name="toy-1", family="toy", durations=(4,), aspect_ratios=("16:9",),
                        max_images=0, default_duration=4),)

    def submit(self, model: ModelInfo, spec: GenerationSpec, callback_url: str | None) -> str:
        resp = self.request("POST", "/jobs", json={"text": spec.prompt}, creates_task=True)
        if resp.http_status != 200:
            raise http_error(resp, "submit")
        return task_id_from(dig(resp.body, "job"), resp.text_sample)

    def fetch(self, task_id: str, variant: str | None = None) -> ProviderResponse:
        return self.request("GET", f"/jobs/{quote(task_id, safe='')}")

    def normalize(self, resp: ProviderResponse) -> PollResult:
        def judge(r: ProviderResponse) -> PollResult:
            if r.http_status != 200:
                raise http_error(r, "status")
            return run_chain((ToyJobNormalizer(), *LAST_RESORT), r.body, sample_of(r))
        return guarded(resp, judge)


class ToyFake(FakeFamily):
    prefix = "toy"
    config_name = "toy"
    families = ("toy",)

    def handle(self, req: FakeRequest) -> FakeReply | None:
        if req.method == "POST" and req.path == "/jobs":
            return reply({"job": self.state.new_task("toy", str(req.json_body().get("text")))})
        if req.method == "GET" and req.path.startswith("/jobs/"):
            task_id = req.path[len("/jobs/"):]
            _, step, k = self.state.poll(task_id)
            if step == "success":
                return reply({"job": task_id, "phase": "done",
                              "video": self.file_url(req, task_id)})
            return reply({"job": task_id, "phase": "wait" if k == 1 else "work"})
        return None


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch) -> Iterator[fake_server.FakeProvider]:
    # the two registry lines a new family adds
    monkeypatch.setitem(providers.PROVIDERS, "toy", ToyProvider)
    monkeypatch.setattr(fake_server, "FAKES", (*fake_server.FAKES, ToyFake))
    monkeypatch.setattr(providers, "MODELS", providers._index(providers.PROVIDERS))
    server = fake_server.start_in_thread()
    yield server
    server.stop()


def test_a_new_family_runs_end_to_end_through_the_unchanged_engine(
    toy: fake_server.FakeProvider, settings: Settings
) -> None:
    rt: Runtime = build_runtime(settings.model_copy(update={
        "providers": toy.provider_settings()}))
    assert "toy-1" in providers.supported_models()
    req = GenerateRequest.model_validate({"sessionId": "s", "model": "toy-1",
                                          "prompt": "a kite (ok2)"})
    job = generate_job_record(req, providers.get_model("toy-1"), rt.settings, None)
    rt.store.create(job)
    assert drive_from(rt, job.job_id, 0)[-1] == "deliver"
    stored = rt.store.get(job.job_id)
    assert stored is not None and stored.status.value == "delivering"
    assert stored.output_url == f"{toy.base_url}/files/{stored.provider_task_id}.mp4"
    assert toy.stats()["polls"][stored.provider_task_id] == 3  # wait, work, done
