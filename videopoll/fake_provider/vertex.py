"""Vertex AI's Veo played (providers.md §5.2), under ``/vertex``: ``predictLongRunning`` and
``fetchPredictOperation`` on a model, and Cloud Storage's media download of the outputs, all
wanting ``Authorization: Bearer <token>``.

A submit with ``parameters.storageUri`` gets its video as ``gs://…`` (served at
``/vertex/storage/download/storage/v1/b/<bucket>/o/<object>?alt=media``); one without gets it
inline as base64, as Vertex does.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from videopoll.fake_provider.core import FakeFamily, FakeReply, FakeRequest, reply
from videopoll.fake_provider.gemini import google_error, operation_answer
from videopoll.fake_provider.scenarios import parse_scenario

SAMPLE_MP4 = Path(__file__).with_name("sample.mp4")
_MODEL = r"/v1/(projects/([a-z0-9-]+)/locations/([a-z0-9-]+)/publishers/google/models/([\w.-]+))"
_SUBMIT = re.compile(_MODEL + ":predictLongRunning")
_FETCH = re.compile(_MODEL + ":fetchPredictOperation")
_STORAGE = re.compile(r"/storage/download/storage/v1/b/([\w.-]+)/o/([^/]+)")
_TASK = re.compile(r"(?:.*/)?(vertex_[A-Za-z0-9_]+)/sample_0\.mp4")
PARAMETERS = {"aspectRatio", "durationSeconds", "enhancePrompt", "generateAudio",
              "negativePrompt", "personGeneration", "resolution", "sampleCount", "seed",
              "storageUri"}
INSTANCE = {"prompt", "image", "lastFrame", "video", "referenceImages"}


class VertexFake(FakeFamily):
    prefix = "vertex"
    config_name = "vertex"
    families = ("vertex",)
    api_key = "fake-access-token"
    project = "fake-project"
    bucket = "fake-bucket"

    def config(self, server_url: str) -> dict[str, Any]:
        return {"base_url": self.base_url(server_url), "api_key": self.api_key,
                "project": self.project, "location": "us-central1",
                "storage_uri": f"gs://{self.bucket}/videopoll",
                "storage_base_url": f"{self.base_url(server_url)}/storage"}

    def handle(self, req: FakeRequest) -> FakeReply | None:
        if not self.authorized(req):
            return google_error(401, "UNAUTHENTICATED", "Request had invalid authentication "
                                "credentials. Expected OAuth 2 access token.")
        if req.method == "POST" and (m := _SUBMIT.fullmatch(req.path)):
            return self._submit(m.group(1), req.json_body())
        if req.method == "POST" and (m := _FETCH.fullmatch(req.path)):
            name = req.json_body().get("operationName")
            if not isinstance(name, str) or not name.startswith(m.group(1) + "/operations/"):
                return google_error(400, "INVALID_ARGUMENT",
                                    "operationName must be an operation of this model.")
            return self._poll(name)
        if req.method == "GET" and (m := _STORAGE.fullmatch(req.path)):
            return self._object(m.group(1), unquote(m.group(2)), req.query.get("alt"))
        return google_error(404, "NOT_FOUND", f"{req.method} {req.path} is not served")

    def _submit(self, model_path: str, body: dict[str, Any]) -> FakeReply:
        instances = body.get("instances")
        first = instances[0] if isinstance(instances, list) and instances else {}
        first = first if isinstance(first, dict) else {}
        parameters = body.get("parameters", {})
        prompt = first.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            return google_error(400, "INVALID_ARGUMENT", "instances[0].prompt is required.")
        unknown = ((set(parameters) - PARAMETERS if isinstance(parameters, dict) else {"?"})
                   | (set(first) - INSTANCE))
        if unknown:
            return google_error(400, "INVALID_ARGUMENT",
                                f"Invalid JSON payload: unknown fields {sorted(unknown)}.")
        scenario = parse_scenario(prompt)
        if scenario.name == "maintenance":
            return google_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded for "
                                "aiplatform.googleapis.com/online_prediction_requests_per_"
                                "base_model with base model: veo-3.1-generate-001.")
        task = self.state.new_task("vertex", prompt, body)
        if scenario.name == "lostreply":
            return google_error(500, "INTERNAL", "Internal error encountered.")
        answer = reply({"name": f"{model_path}/operations/{task}"})
        if scenario.name == "slowreply":
            answer.delay = float(scenario.n)
        return answer

    def _poll(self, name: str) -> FakeReply:
        task = name.rsplit("/", 1)[-1]
        _, step, k = self.state.poll(task)
        if step == "auth":  # the token expired between two polls
            return google_error(401, "UNAUTHENTICATED", "Request had invalid authentication "
                                "credentials.")
        submitted = self.state.submitted.get(task)
        storage = str(((submitted or {}).get("parameters") or {}).get("storageUri") or "")
        video: dict[str, Any] = (
            {"gcsUri": f"{storage.rstrip('/')}/{task}/sample_0.mp4", "mimeType": "video/mp4"}
            if storage.startswith("gs://") else
            {"bytesBase64Encoded": base64.b64encode(SAMPLE_MP4.read_bytes()).decode(),
             "mimeType": "video/mp4"})
        kind = "type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse"
        return operation_answer(
            name, step, k,
            success={"@type": kind, "raiMediaFilteredCount": 0, "videos": [video]},
            empty={"@type": kind, "raiMediaFilteredCount": 0, "videos": []},
            filtered={"@type": kind, "raiMediaFilteredCount": 1, "raiMediaFilteredReasons": [
                "The prompt could not be submitted. This prompt contains sensitive words that "
                "violate Google's Responsible AI practices."]})

    def _object(self, bucket: str, name: str, alt: str | None) -> FakeReply:
        match = _TASK.fullmatch(name)
        if bucket != self.bucket or match is None or alt != "media":
            return google_error(404, "NOT_FOUND", f"No such object: {bucket}/{name}")
        task = match.group(1)
        with self.state.lock:
            self.state.downloads[task] = self.state.downloads.get(task, 0) + 1
        if parse_scenario(task).name == "gone":
            return google_error(404, "NOT_FOUND", f"No such object: {bucket}/{name}")
        return FakeReply(200, SAMPLE_MP4.read_bytes(), "video/mp4")
