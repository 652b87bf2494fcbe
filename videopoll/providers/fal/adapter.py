"""The fal.ai adapter: submit to the queue, poll status and result, cancel, verify webhooks."""

from __future__ import annotations

import re
from typing import Any, ClassVar
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from videopoll.errors import (
    CallbackRejected,
    PermanentError,
    SubmitOutcomeUnknownError,
    VideopollError,
)
from videopoll.models import ErrorCode, GenerationSpec, PollResult, ProviderResponse
from videopoll.normalizers import guarded, json_body, run_chain, sample_of
from videopoll.providers.base import (
    CallbackOutcome,
    CallbackRequest,
    ModelInfo,
    Provider,
    ProviderConfig,
)
from videopoll.providers.fal.shapes import CHAIN, failure_of, result_fault
from videopoll.providers.fal.webhook import WebhookKeys
from videopoll.providers.fields import as_dict, as_str, dig
from videopoll.providers.http import callback_task, http_error, task_id_from
from videopoll.ratelimit import Limit

BASE_URL = "https://queue.fal.run"
JWKS_URL = "https://rest.fal.ai/.well-known/jwks.json"
_SEG = r"[A-Za-z0-9_.-]+"
_TASK = re.compile(rf"(?P<app>{_SEG}/{_SEG})/requests/(?P<request>{_SEG})")
# fal locks an account whose balance ran out with a 403 "Exhausted balance" [3P]
_BALANCE = re.compile(r"balance|credit|billing", re.IGNORECASE)
_REFUSALS = (ErrorCode.MODERATION_REJECTED, ErrorCode.ASSET_FETCH_FAILED,
             ErrorCode.VALIDATION_FAILED)


class FalConfig(ProviderConfig):
    """FAL_BASE_URL, FAL_API_KEY, FAL_JWKS_URL and FAL_WEBHOOK_PUBLIC_KEYS."""

    base_url: str = BASE_URL
    jwks_url: str = JWKS_URL
    # Comma-separated base64url Ed25519 keys (tests, offline): when set, no JWKS is fetched.
    webhook_public_keys: str = ""


def _model(name: str, durations: tuple[int, ...], ratios: tuple[str, ...], images: int,
           default: int) -> ModelInfo:
    return ModelInfo(name=name, family="fal", durations=durations, aspect_ratios=ratios,
                     max_images=images, min_images=images, default_duration=default)


# Names are fal's endpoint ids. Veo 3 takes duration "8s" (a newer schema also lists "4s" and
# "6s", [UNCONFIRMED] for fal-ai/veo3 itself, so only 8 is offered) and aspect_ratio 16:9 or
# 9:16. Kling 2.1 standard takes duration "5"/"10"; its aspect ratios are [3P]. The
# image-to-video ids and their ``image_url`` field are [3P] (fal's per-model schema pages).
_KLING_RATIOS = ("16:9", "9:16", "1:1")
MODELS = (
    _model("fal-ai/veo3", (8,), ("16:9", "9:16"), 0, 8),
    _model("fal-ai/veo3/image-to-video", (8,), ("16:9", "9:16"), 1, 8),
    _model("fal-ai/kling-video/v2.1/standard/text-to-video", (5, 10), _KLING_RATIOS, 0, 5),
    _model("fal-ai/kling-video/v2.1/standard/image-to-video", (5, 10), _KLING_RATIOS, 1, 5),
)


def model_input(model: ModelInfo, spec: GenerationSpec) -> dict[str, Any]:
    """The model's input object in its own field names (every fal model has its schema)."""
    body: dict[str, Any] = {"prompt": spec.prompt, "aspect_ratio": spec.aspect_ratio}
    if model.name.startswith("fal-ai/veo3"):
        body["duration"] = f"{spec.duration_seconds}s"
    else:
        body["duration"] = str(spec.duration_seconds)
        if spec.image_urls:  # Kling image-to-video takes the image's shape [3P]
            del body["aspect_ratio"]
    if spec.image_urls:
        body["image_url"] = spec.image_urls[0]
    return body


def app_of(model_id: str) -> str:
    """owner/app of an endpoint id: all that status, result and cancel URLs name."""
    return "/".join(model_id.split("/")[:2])


def with_app(callback_url: str, app: str) -> str:
    """Our callback URL plus ``app=<owner>/<app>``: fal's webhook names only the request."""
    parts = urlsplit(callback_url)
    query = urlencode([*parse_qsl(parts.query, keep_blank_values=True), ("app", app)])
    return urlunsplit(parts._replace(query=query))


def split_task(task_id: str) -> tuple[str, str] | None:
    """(owner/app, request id) of one of our fal task ids; ``None`` for anything else."""
    match = _TASK.fullmatch(task_id or "")
    if match is None or any(s in (".", "..") for s in task_id.split("/")):
        return None
    return match["app"], match["request"]


class FalProvider(Provider):
    family = "fal"
    config_name = "fal"
    config_class: ClassVar[type[ProviderConfig]] = FalConfig
    default_base_url = BASE_URL
    models = MODELS
    rate_account = "fal"
    # fal documents no request budget for the queue API, only account concurrency that the
    # queue absorbs itself ("waits and retries" on 429, §7): conservative defaults.
    status_limit = Limit(rate=10.0, burst=10)
    submit_limit = Limit(rate=2.0, burst=10)
    pushes_callbacks = True
    signs_callbacks = True
    can_cancel = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # one adapter per family per process (``Runtime.provider``): the JWKS cache lives here
        self.keys = WebhookKeys(self.session, str(getattr(self.config, "jwks_url", JWKS_URL)),
                                str(getattr(self.config, "webhook_public_keys", "")))

    def auth_headers(self) -> dict[str, str]:
        # fal's scheme, not Bearer; outputs are public CDN URLs (fal.media), and the key only
        # ever goes to fal's API origin (``download_headers``)
        return {"Authorization": f"Key {self.api_key}"} if self.api_key else {}

    def submit(self, model: ModelInfo, spec: GenerationSpec, callback_url: str | None) -> str:
        if len(spec.image_urls) < model.min_images:
            raise PermanentError(ErrorCode.VALIDATION_FAILED, f"{model.name} needs an image")
        app = app_of(model.remote_id)
        params = {"fal_webhook": with_app(callback_url, app)} if callback_url else None
        resp = self.request("POST", f"/{model.remote_id}", json=model_input(model, spec),
                            params=params, creates_task=True)
        if not 200 <= resp.http_status < 300:
            raise _refusal(resp)
        body = as_dict(resp.body)
        request_id = task_id_from(body.get("request_id"), resp.text_sample)
        return self._task_from(as_str(body.get("status_url")), app, request_id)

    def _task_from(self, status_url: str, app: str, request_id: str) -> str:
        """The stem of the status URL fal returned, relative to our base; when it is absent
        or odd, the documented layout ``<owner>/<app>/requests/<id>``."""
        path = urlsplit(status_url).path
        base_path = urlsplit(self.base_url).path.rstrip("/")
        if base_path and path.startswith(base_path + "/"):
            path = path[len(base_path):]
        stem = path.strip("/").removesuffix("/status")
        if split_task(stem) is not None and stem.endswith(f"/requests/{request_id}"):
            # (were its app ever not the callback's ``app``, polls still work; only that
            # task's callbacks would find no job, and the poll schedule carries on)
            return stem
        fallback = f"{app}/requests/{request_id}"
        if split_task(fallback) is None:
            raise SubmitOutcomeUnknownError("submit accepted with an unusable request id",
                                            request_id[:200])
        return fallback

    @staticmethod
    def _path(task_id: str) -> str:
        """The URL stem of a task id, segment by segment. An id of another shape (a bare
        request id from the n8n path) is sent as it is: fal answers 404, and the poller's
        not-found grace ends the job, as for any id the provider does not know."""
        return "/" + "/".join(quote(s, safe="").replace(".", "%2E") if s in (".", "..")
                              else quote(s, safe="") for s in task_id.split("/"))

    def fetch(self, task_id: str, variant: str | None = None) -> ProviderResponse:
        path = self._path(task_id)
        status = self.request("GET", f"{path}/status")
        if status.http_status not in (200, 202) or dig(status.body, "status") != "COMPLETED":
            return status
        result = self.request("GET", path)  # the verdict, success or failure, is here
        merged = {**as_dict(status.body), "result": {
            "http_status": result.http_status, "body": result.body,
            "text": result.text_sample[:300]}}
        return status.model_copy(update={
            "body": merged, "retry_after": result.retry_after or status.retry_after})

    def normalize(self, resp: ProviderResponse) -> PollResult:
        return guarded(resp, _judge)

    def cancel(self, task_id: str) -> bool:
        """PUT …/cancel: 202 CANCELLATION_REQUESTED is a yes, 400 ALREADY_COMPLETED a no."""
        return self.best_effort("PUT", f"{self._path(task_id)}/cancel") is not None

    def callback(self, req: CallbackRequest) -> CallbackOutcome:
        """The signed webhook's task: ``?app=`` (ours, from submit) + the body's request id."""
        signed_request = self.keys.verify(req, self.callback_max_age)
        request_id = as_str(dig(req.body, "request_id"))
        task = f"{req.query.get('app', '')}/requests/{request_id}"
        if not request_id or split_task(task) is None:
            raise CallbackRejected(400, "the webhook names no request, or its URL lacks ?app=")
        if request_id != signed_request:
            raise CallbackRejected(400, "the webhook's body and signature name other requests")
        return CallbackOutcome(task_id=callback_task(task))


def _refusal(resp: ProviderResponse) -> VideopollError:
    """What a non-2xx submit answer means. A typed 400/422 (``detail[].type``) says why the
    input was refused (moderation, an image fal could not fetch, validation); the rest is the
    plain REST table, 5xx included: outcome unknown."""
    found = failure_of(resp.body)
    if resp.http_status in (400, 422) and found is not None and found[0] in _REFUSALS:
        return PermanentError(found[0], found[1])
    if resp.http_status in (402, 403) and _BALANCE.search(resp.text_sample):
        return PermanentError(ErrorCode.INSUFFICIENT_CREDITS, resp.text_sample[:300])
    return http_error(resp, "submit")


def _judge(resp: ProviderResponse) -> PollResult:
    """One status answer (with its merged result) → ``PollResult``; faults raise."""
    if resp.http_status not in (200, 202):
        raise http_error(resp, "status")
    body = json_body(resp)
    if (fault := result_fault(resp)) is not None:
        raise fault
    return run_chain(CHAIN, body, sample_of(resp))
