"""Veo 3.1 on Vertex AI: ``predictLongRunning``, polled with ``fetchPredictOperation``.

The poll is a POST to the model's ``:fetchPredictOperation`` with ``{"operationName": name}``,
not a GET on the operation (providers.md §5.2); the model sits inside the operation name
(``projects/…/models/MODEL/operations/ID``), so the poll URL is read from the task id.

Outputs land in Cloud Storage under ``parameters.storageUri`` (VERTEX_STORAGE_URI) as
``gs://bucket/path``, fetched through the JSON API's media download with the same bearer
token. Without a storage URI Vertex answers the video inline as base64: a job record cannot
hold that, so such an answer is a success without URL (output_missing follows) and a warning
says to set VERTEX_STORAGE_URI.

Auth is an OAuth access token: VERTEX_API_KEY used as one as it is, or VERTEX_TOKEN_COMMAND
(``gcloud auth print-access-token``) run when needed and kept 50 minutes. We do not bundle
google-auth, so service-account keys and metadata-server credentials are reached only
through such a command.
"""

from __future__ import annotations

import logging
import re
import shlex
import subprocess
import threading
import time
from typing import Any, ClassVar
from urllib.parse import quote

from pydantic import field_validator

from videopoll.errors import PermanentError, TransientError
from videopoll.models import ErrorCode, GenerationSpec, PollResult, ProviderResponse
from videopoll.normalizers import LAST_RESORT, Normalizer, guarded
from videopoll.providers.base import ModelInfo, Provider, ProviderConfig
from videopoll.providers.fields import as_dict, as_list, as_str
from videopoll.providers.google.operations import (
    GoogleConfig,
    OperationNormalizer,
    instance,
    judge,
    submitted_operation,
    veo_model,
)
from videopoll.providers.http import MAX_RESPONSE_BYTES, same_origin
from videopoll.ratelimit import Limit
from videopoll.redact import redact

log = logging.getLogger(__name__)

STORAGE_BASE_URL = "https://storage.googleapis.com"
_OPERATION = re.compile(r"(projects/[^/]+/locations/[^/]+/publishers/google/models/[^/]+)"
                        r"/operations/[^/]+")
_GS = re.compile(r"gs://([^/?#\s]{1,222})/(.+)")
_LOCATION = re.compile(r"[a-z0-9-]{1,40}")
_PROJECT = re.compile(r"([a-z0-9.-]{1,80}:)?[a-z0-9-]{1,40}")  # domain-scoped ids have "d:"


class VertexConfig(GoogleConfig):
    """VERTEX_PROJECT, VERTEX_LOCATION, VERTEX_STORAGE_URI, VERTEX_API_KEY (an access token),
    VERTEX_TOKEN_COMMAND; VERTEX_BASE_URL defaults to the location's regional endpoint."""

    project: str = ""
    location: str = "us-central1"
    storage_uri: str = ""  # gs://bucket/prefix: where Vertex writes the videos
    storage_base_url: str = STORAGE_BASE_URL  # the fake provider serves its own
    token_command: str = ""  # e.g. "gcloud auth print-access-token"; wins over api_key
    token_timeout: float = 20.0

    @field_validator("location")
    @classmethod
    def _location(cls, value: str) -> str:
        if not _LOCATION.fullmatch(value):
            raise ValueError("must be a location id such as us-central1")
        return value

    @field_validator("project")
    @classmethod
    def _project(cls, value: str) -> str:
        if value and not _PROJECT.fullmatch(value):
            raise ValueError("must be a Google Cloud project id")
        return value


def regional_base(location: str) -> str:
    """The documented endpoint; the ``global`` location has no regional prefix."""
    if location == "global":
        return "https://aiplatform.googleapis.com"
    return f"https://{location}-aiplatform.googleapis.com"


def gcs_download_url(gcs_uri: str, storage_base: str) -> str | None:
    """``gs://bucket/object`` as a JSON API media download URL; ``None`` if it is not one."""
    match = _GS.fullmatch(gcs_uri.strip())
    if match is None:
        return None
    bucket, name = match.groups()
    return (f"{storage_base.rstrip('/')}/download/storage/v1/b/{quote(bucket, safe='')}/o/"
            f"{quote(name, safe='')}?alt=media")


class AccessToken:
    """The bearer token: the static one, or what ``command`` prints, kept for ``ttl`` seconds
    (gcloud's tokens live an hour). Failing to get one raises before anything is sent."""

    def __init__(self, static: str | None, command: str, timeout: float,
                 ttl: float = 50 * 60) -> None:
        self.static, self.command, self.timeout, self.ttl = static, command, timeout, ttl
        self._value: str | None = None
        self._until = 0.0
        self._lock = threading.Lock()

    def get(self) -> str | None:
        if not self.command:
            return self.static
        with self._lock:
            if self._value is None or time.monotonic() >= self._until:
                self._value = self._run()
                self._until = time.monotonic() + self.ttl
            return self._value

    def forget(self) -> None:
        with self._lock:
            self._value = None

    def _run(self) -> str:
        try:
            done = subprocess.run(shlex.split(self.command), capture_output=True, text=True,
                                  timeout=self.timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise TransientError(f"VERTEX_TOKEN_COMMAND took over {self.timeout:g} s") from exc
        except (OSError, ValueError) as exc:  # not found, not executable, bad quoting
            raise PermanentError(ErrorCode.PROVIDER_AUTH_FAILED,
                                 f"VERTEX_TOKEN_COMMAND failed: {exc}") from exc
        lines = done.stdout.strip().splitlines()
        if done.returncode != 0 or not lines:
            raise PermanentError(ErrorCode.PROVIDER_AUTH_FAILED,
                                 f"VERTEX_TOKEN_COMMAND exited {done.returncode}: "
                                 f"{redact(done.stderr.strip(), 200)}")
        return lines[-1].strip()


class VertexVideoOperationNormalizer(OperationNormalizer):
    """``response.videos[i].gcsUri`` (§5.2), as download URLs on ``storage_base``."""

    name = "vertex_video_operation"

    def __init__(self, storage_base: str) -> None:
        self.storage_base = storage_base

    def outputs(self, payload: dict[str, Any]) -> tuple[list[str], bool]:
        videos = [as_dict(v) for v in as_list(payload.get("videos"))]
        urls = [u for v in videos
                if (u := gcs_download_url(as_str(v.get("gcsUri")), self.storage_base))]
        if videos and not urls and any(v.get("bytesBase64Encoded") for v in videos):
            log.warning("vertex answered the video inline (base64), which a job cannot keep:"
                        " set VERTEX_STORAGE_URI so Vertex writes it to Cloud Storage")
        return urls, bool(videos)


class VertexProvider(Provider):
    family = "vertex"
    config_name = "vertex"
    config_class: ClassVar[type[ProviderConfig]] = VertexConfig
    models = (veo_model("veo-3.1-generate-001", "vertex"),
              veo_model("veo-3.1-fast-generate-001", "vertex"))
    rate_account = "vertex"
    # "Maximum API requests per minute per project: 10" [DOC] (§5.2): 9 a minute and no
    # burst keeps any 60-second window at 10. Whether polls count against that quota is not
    # documented; a modest 30 a minute leaves headroom for several running jobs.
    submit_limit = Limit(rate=9 / 60, burst=1)
    status_limit = Limit(rate=0.5, burst=5)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        config = self.config
        if not isinstance(config, VertexConfig):
            raise TypeError(f"VertexProvider needs a VertexConfig, not {type(config).__name__}")
        self.vertex = config
        if not config.base_url:
            self.base_url = regional_base(config.location)
        self.storage_base = config.storage_base_url.rstrip("/")
        self.token = AccessToken(self.api_key, config.token_command, config.token_timeout)
        self.chain: tuple[Normalizer, ...] = (
            VertexVideoOperationNormalizer(self.storage_base), *LAST_RESORT)

    def submit(self, model: ModelInfo, spec: GenerationSpec, callback_url: str | None) -> str:
        # callback_url is ignored: Vertex's Veo API takes no webhook
        cfg = self.vertex
        if not cfg.project:
            raise PermanentError(ErrorCode.PROVIDER_AUTH_FAILED, "VERTEX_PROJECT is not set")
        parameters: dict[str, Any] = {
            "aspectRatio": spec.aspect_ratio,
            "durationSeconds": spec.duration_seconds,  # an integer in the API reference
            "resolution": "720p",  # 1080p is 8 s only
            "sampleCount": 1,
            # documented as required for Veo 3 models; the Gemini API path always has audio
            "generateAudio": True,
        }
        if cfg.storage_uri:
            parameters["storageUri"] = cfg.storage_uri
        else:
            log.warning("VERTEX_STORAGE_URI is not set: Vertex will answer the video inline, "
                        "which cannot be delivered")
        body = {"instances": [instance(spec.prompt, spec.image_urls, cfg, self.timeout)],
                "parameters": parameters}
        path = f"/v1/{self._model_path(model.remote_id)}:predictLongRunning"
        headers = self._headers(self.token.get())
        return submitted_operation(self.request("POST", path, json=body, creates_task=True,
                                                headers=headers))

    def fetch(self, task_id: str, variant: str | None = None) -> ProviderResponse:
        match = _OPERATION.fullmatch(task_id)
        # An id that names no model (not one we issued): ask the first model's endpoint,
        # which answers whether it knows the operation.
        model_path = match.group(1) if match else self._model_path(self.models[0].remote_id)
        try:
            token = self.token.get()
        except PermanentError as exc:  # fetch raises only transient faults; normalize judges
            return _answer(401, "UNAUTHENTICATED", exc.provider_message)
        path = f"/v1/{quote(model_path, safe='/')}:fetchPredictOperation"
        try:
            resp = self.request("POST", path, json={"operationName": task_id},
                                headers=self._headers(token))
        except TransientError as exc:
            if not exc.reason.startswith("response larger than"):
                raise
            # only an inline (base64) video makes an operation this large: done, no URL
            log.warning("vertex answered over %d bytes (an inline video): set "
                        "VERTEX_STORAGE_URI", MAX_RESPONSE_BYTES)
            return ProviderResponse(http_status=200, body={
                "name": task_id, "done": True,
                "response": {"videos": [{"bytesBase64Encoded": "(dropped: too large)"}]}})
        if resp.http_status == 401:
            self.token.forget()  # expired early or revoked: run the command again next time
        return resp

    def normalize(self, resp: ProviderResponse) -> PollResult:
        return guarded(resp, lambda r: judge(r, self.chain))

    def download_headers(self, url: str) -> dict[str, str]:
        if not same_origin(url, self.storage_base):
            return {}
        try:
            token = self.token.get()
        except (PermanentError, TransientError):
            return {}  # the download then answers 401 and says so
        return {"Authorization": f"Bearer {token}"} if token else {}

    def _model_path(self, model: str) -> str:
        cfg = self.vertex
        return (f"projects/{cfg.project}/locations/{cfg.location}/publishers/google/models/"
                f"{quote(model, safe='')}")

    @staticmethod
    def _headers(token: str | None) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers


def _answer(status: int, name: str, message: str) -> ProviderResponse:
    """A Google error answer made here, for faults found before any request was sent."""
    body = {"error": {"code": status, "status": name, "message": message}}
    return ProviderResponse(http_status=status, body=body, text_sample=message[:500])
