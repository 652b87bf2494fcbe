"""The Gemini API's Veo played (providers.md §5.1), under ``/gemini``: ``predictLongRunning``,
operations by name, and the Files API download link, each wanting ``x-goog-api-key``.

Errors are google.rpc.Status bodies. A request without the key is 403 PERMISSION_DENIED and
one with a wrong key 400 INVALID_ARGUMENT / API_KEY_INVALID, as the real API answers them.
The download link redirects to the server's ``/files/`` copy, as Google's redirects to storage.
"""

from __future__ import annotations

import re
from typing import Any

from videopoll.fake_provider.core import FakeFamily, FakeReply, FakeRequest, reply, text_reply
from videopoll.fake_provider.scenarios import parse_scenario

_SUBMIT = re.compile(r"/v1beta/models/([A-Za-z0-9._-]+):predictLongRunning")
_OPERATION = re.compile(r"/v1beta/(models/[A-Za-z0-9._-]+/operations/([A-Za-z0-9._-]+))")
_DOWNLOAD = re.compile(r"/v1beta/files/([A-Za-z0-9._-]+):download")
PARAMETERS = {"aspectRatio", "durationSeconds", "resolution", "negativePrompt",
              "personGeneration", "numberOfVideos", "seed"}


def google_error(status: int, name: str, message: str, **extra: Any) -> FakeReply:
    """A Google API error answer (also used by the Vertex fake)."""
    return reply({"error": {"code": status, "message": message, "status": name, **extra}},
                 status=status)


def operation_answer(name: str, step: str, k: int, success: dict[str, Any],
                     empty: dict[str, Any], filtered: dict[str, Any]) -> FakeReply:
    """One operation poll for ``step``, shared with the Vertex fake: the API's own
    ``response`` shapes come in as ``success``, ``empty`` (done, no video) and ``filtered``."""
    if step == "http500":
        return google_error(500, "INTERNAL", "Internal error encountered.")
    if step == "html502":
        return text_reply(502, "<html><body>502 Bad Gateway</body></html>")
    if step == "garbage":
        return text_reply(200, "not json{{", "text/plain")
    if step == "ratelimited":
        return google_error(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted "
                            "(e.g. check quota).")
    if step == "auth":
        return google_error(403, "PERMISSION_DENIED", "The caller does not have permission.")
    if step in ("notfound", "expired"):
        return google_error(404, "NOT_FOUND", f"Operation {name} not found.")
    if step == "generating":  # proto3 JSON omits a false ``done`` on the first answer
        return reply({"name": name} if k == 1 else {"name": name, "done": False})
    done: dict[str, Any] = {"name": name, "done": True}
    if step == "moderation":
        return reply({**done, "response": filtered})
    if step == "upstream":
        return reply({**done, "error": {"code": 13, "message": "Internal error: video "
                                        "generation failed."}})
    if step == "canceled":
        return reply({**done, "error": {"code": 1, "message": "Operation was cancelled."}})
    return reply({**done, "response": empty if step == "nourl" else success})


class GeminiFake(FakeFamily):
    prefix = "gemini"
    config_name = "gemini"
    families = ("gemini",)

    def handle(self, req: FakeRequest) -> FakeReply | None:
        if req.header("authorization"):  # the Gemini API key is not a bearer token
            return google_error(401, "UNAUTHENTICATED", "Request had invalid authentication "
                                "credentials. Expected OAuth 2 access token.")
        key = req.header("x-goog-api-key")
        if not key:
            return google_error(403, "PERMISSION_DENIED",
                                "Method doesn't allow unregistered callers.")
        if key != self.api_key:
            return google_error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a "
                                "valid API key.", details=[{
                                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                    "reason": "API_KEY_INVALID"}])
        if req.method == "POST" and (m := _SUBMIT.fullmatch(req.path)):
            return self._submit(m.group(1), req.json_body())
        if req.method == "GET" and (m := _OPERATION.fullmatch(req.path)):
            return self._poll(req, m.group(1), m.group(2))
        if req.method == "GET" and (m := _DOWNLOAD.fullmatch(req.path)):
            if req.query.get("alt") != "media":
                return reply({"file": {"name": f"files/{m.group(1)}"}})
            return FakeReply(302, b"", "text/plain",
                             headers={"Location": f"{req.server_url}/files/{m.group(1)}.mp4"})
        return google_error(404, "NOT_FOUND", f"{req.method} {req.path} is not served")

    def _submit(self, model: str, body: dict[str, Any]) -> FakeReply:
        instances = body.get("instances")
        first = instances[0] if isinstance(instances, list) and instances else None
        prompt = first.get("prompt") if isinstance(first, dict) else None
        parameters = body.get("parameters", {})
        if not isinstance(prompt, str) or not prompt.strip():
            return google_error(400, "INVALID_ARGUMENT", "instances[0].prompt is required.")
        unknown = set(parameters) - PARAMETERS if isinstance(parameters, dict) else {"?"}
        if unknown:
            return google_error(400, "INVALID_ARGUMENT",
                                f"Invalid JSON payload: unknown parameters {sorted(unknown)}.")
        scenario = parse_scenario(prompt)
        if scenario.name == "maintenance":  # a quota refusal: no operation exists
            return google_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded for "
                                "predictLongRunning requests per minute.")
        task = self.state.new_task("gemini", prompt, body)
        if scenario.name == "lostreply":
            return google_error(500, "INTERNAL", "Internal error encountered.")
        answer = reply({"name": f"models/{model}/operations/{task}"})
        if scenario.name == "slowreply":
            answer.delay = float(scenario.n)
        return answer

    def _poll(self, req: FakeRequest, name: str, task: str) -> FakeReply:
        _, step, k = self.state.poll(task)
        uri = f"{req.base_url}/v1beta/files/{task}:download?alt=media"
        samples = {"generatedSamples": [{"video": {"uri": uri}}]}
        reasons = {"raiMediaFilteredCount": 1, "raiMediaFilteredReasons": [
            "Your prompt may violate our usage guidelines. You will not be charged."]}
        wrap = "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse"
        return operation_answer(
            name, step, k,
            success={"@type": wrap, "generateVideoResponse": samples},
            empty={"@type": wrap, "generateVideoResponse": {}},
            filtered={"@type": wrap, "generateVideoResponse": reasons})
