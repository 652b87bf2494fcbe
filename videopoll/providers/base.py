"""The one interface every provider family implements, and the HTTP plumbing they share.

A family owns everything about its API: endpoints and auth (``submit``, ``fetch``,
``cancel``), its ordered chain of answer shapes and its error mapping (``normalize``), its
push-callback check (``callback``), the headers its output downloads need
(``download_headers``), its settings (``config_class``, read from ``<PREFIX>_…`` variables)
and its models. The engine sees only this class and the registry in ``providers/__init__.py``.

Network faults are translated at this boundary into ``TransientError`` (``raise … from exc``),
so nothing above it imports ``requests`` exceptions. A submit (``creates_task``) is judged
more strictly: a fault after the request may have left this machine is
``SubmitOutcomeUnknownError``, because the provider may have created — and billed — the task.

To add a provider family: write ``providers/<family>.py`` (or a package) with a ``Provider``
subclass, its ``ProviderConfig`` and its ``models``; add one line to ``PROVIDERS``; record its
payloads under ``tests/fixtures/<family>/`` and teach the fake provider its routes
(``fake_provider/<family>.py``) so the contract test runs it end to end.
"""

from __future__ import annotations

import abc
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import requests
import urllib3
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from urllib3.exceptions import NewConnectionError

from videopoll.errors import (
    CallbackRejected,
    PermanentError,
    RateLimitedError,
    SubmitOutcomeUnknownError,
    TaskNotFoundError,
    TransientError,
    VideopollError,
)
from videopoll.models import ID_MAX_CHARS, ErrorCode, GenerationSpec, PollResult, ProviderResponse
from videopoll.ratelimit import Limit

TEXT_SAMPLE_CHARS = 500
MAX_RESPONSE_BYTES = 2 * 1024 * 1024
Stage = Literal["submit", "status"]


@dataclass(frozen=True)
class ModelInfo:
    """What one public model name means: which family serves it and which options it takes.

    ``name`` is what users type; ``provider_model`` is the provider's own id for it (``veo3``,
    ``gen4_turbo``, ``MiniMax-Hailuo-02``). ``alias`` False keeps a name reachable only as
    ``family:name`` when another family already answers to the bare name.
    """

    name: str
    family: str
    durations: tuple[int, ...]
    aspect_ratios: tuple[str, ...]
    max_images: int
    default_duration: int
    provider_ids: dict[str, str] = field(default_factory=dict)
    provider_model: str = ""
    alias: bool = True
    min_images: int = 0  # image-to-video only models (Runway gen4_turbo) need one

    @property
    def qualified(self) -> str:
        return f"{self.family}:{self.name}"

    @property
    def remote_id(self) -> str:
        return self.provider_model or self.name


class ProviderConfig(BaseSettings):
    """A family's settings: ``<PREFIX>_BASE_URL``, ``<PREFIX>_API_KEY`` and its own extras.

    Built by ``Settings.provider_config`` (environment, then explicit overrides), never at
    import. Families that need more (Kling's key pair, Vertex's project) subclass it.
    """

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False)

    base_url: str = ""
    api_key: SecretStr | None = None
    # The secret a provider signs its push callbacks with (KIE's webhookHmacKey, a
    # Standard Webhooks ``whsec_…``), where the provider signs them.
    webhook_secret: SecretStr | None = None

    def secret(self, name: str) -> str | None:
        value = getattr(self, name, None)
        return value.get_secret_value() if isinstance(value, SecretStr) else None


@dataclass(frozen=True)
class CallbackRequest:
    """A push callback as it arrived: the raw bytes (signatures cover them), the parsed JSON,
    lower-cased headers and the query string."""

    raw: bytes
    body: Any
    headers: Mapping[str, str]
    query: Mapping[str, str] = field(default_factory=dict)
    now: float = field(default_factory=time.time)

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


@dataclass(frozen=True)
class CallbackOutcome:
    """What a verified callback asks for: wake the job of ``task_id``, and/or answer ``reply``
    (MiniMax's challenge must be echoed)."""

    task_id: str | None = None
    reply: dict[str, Any] | None = None


class Provider(abc.ABC):
    """One provider API family (KIE Veo, OpenAI videos, Replicate, …)."""

    family: ClassVar[str]
    # Environment prefix and override key of the family's settings; families that share an
    # account share it (both KIE families read KIE_*).
    config_name: ClassVar[str]
    config_class: ClassVar[type[ProviderConfig]] = ProviderConfig
    default_base_url: ClassVar[str] = ""
    models: ClassVar[tuple[ModelInfo, ...]] = ()
    # Rate limits are per provider *account*: families that share an API key share buckets
    # (KIE Veo and KIE Market both draw on one KIE account).
    rate_account: ClassVar[str] = ""
    status_limit: ClassVar[Limit] = Limit(rate=10.0, burst=10)
    submit_limit: ClassVar[Limit] = Limit(rate=2.0, burst=20)
    pushes_callbacks: ClassVar[bool] = False  # the API can call us back when a task ends
    signs_callbacks: ClassVar[bool] = False  # … and proves it with a signature we verify
    can_cancel: ClassVar[bool] = False
    # What a delivered video's buttons may ask of this family: extend it (a linked generate
    # job with ``spec.extend_task_id``), or fetch another rendition (``fetch(..., variant)``).
    extends: ClassVar[bool] = False
    renditions: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        config: ProviderConfig | None = None,
        timeout: float = 15.0,
        session: requests.Session | None = None,
        callback_max_age: float = 300.0,
    ) -> None:
        self.config = config or self.config_class()
        self.base_url = (self.config.base_url or self.default_base_url).rstrip("/")
        self.api_key = self.config.secret("api_key")
        self.timeout = timeout
        self.session = session or requests.Session()
        self.callback_max_age = callback_max_age

    @classmethod
    def with_config(cls, timeout: float = 15.0, **fields: Any) -> Provider:
        """An adapter from explicit settings (tests, tools), ignoring the environment."""
        # model_validate runs the field validators but, unlike __init__, reads no environment
        return cls(cls.config_class.model_validate(fields), timeout=timeout)

    # --- the protocol ---------------------------------------------------------------------
    @abc.abstractmethod
    def submit(self, model: ModelInfo, spec: GenerationSpec, callback_url: str | None) -> str:
        """Start a generation and return the provider's task id.

        Raises ``PermanentError`` (bad key, no credits, rejected input), ``RateLimitedError`` or
        ``TransientError`` when the request provably was not accepted, and
        ``SubmitOutcomeUnknownError`` when it may have been (never resubmit that blindly).
        """

    @abc.abstractmethod
    def fetch(self, task_id: str, variant: str | None = None) -> ProviderResponse:
        """One status request. Raises only ``TransientError`` (connection faults, timeouts).

        ``variant`` names another rendition of the task where the API has one (Veo 1080p).
        """

    @abc.abstractmethod
    def normalize(self, resp: ProviderResponse) -> PollResult:
        """One status answer of this family → ``PollResult``; faults raise what the poller
        should do (``PermanentError``, ``RateLimitedError``, ``TaskNotFoundError``,
        ``TransientError``). Never any other exception: see ``normalizers.guarded``."""

    def cancel(self, task_id: str) -> bool:
        """Ask the provider to stop the task; True if it said yes. Best effort: a job is
        canceled on our side whatever the provider answers."""
        return False

    def callback(self, req: CallbackRequest) -> CallbackOutcome:
        """The task a push callback is about, after verifying it came from the provider.

        Raises ``CallbackRejected`` (401) for a bad signature or a stale timestamp, and
        (400) for a body that names no task. A callback never completes a job by itself: it
        only wakes the poller, and the status endpoint decides.
        """
        raise CallbackRejected(404, f"{self.family} does not send callbacks")

    def will_push(self) -> bool:
        """Whether this account will call back, so polling may relax to a safety net. A
        family whose webhooks are configured outside the request (OpenAI's dashboard) says so
        only when its webhook secret is set."""
        return self.pushes_callbacks

    def download_headers(self, url: str) -> dict[str, str]:
        """Headers the output download needs: the key, for an output the API serves itself
        (OpenAI's ``/content``, Gemini's files), and nothing for any other host, so a key is
        never handed to a CDN or a signed storage link (``download.stream`` also drops them
        on a cross-origin redirect)."""
        return self.auth_headers() if same_origin(url, self.base_url) else {}

    # --- shared plumbing ------------------------------------------------------------------
    def auth_headers(self) -> dict[str, str]:
        """What proves who we are to the API; families with another scheme override it (fal's
        ``Key``, Gemini's ``x-goog-api-key``, Kling's signed JWT)."""
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def headers(self) -> dict[str, str]:
        return {"Content-Type": "application/json", "Accept": "application/json",
                **self.auth_headers()}

    def best_effort(self, method: str, path: str) -> ProviderResponse | None:
        """One request whose failure costs nothing (a cancel): the 2xx answer, or ``None`` for
        a refusal or a network fault."""
        try:
            resp = self.request(method, path)
        except TransientError:
            return None
        return resp if 200 <= resp.http_status < 300 else None

    def request(
        self, method: str, path: str, *, creates_task: bool = False,
        headers: dict[str, str] | None = None, **kwargs: Any
    ) -> ProviderResponse:
        """Send one request and read at most ``MAX_RESPONSE_BYTES`` of the answer.

        ``path`` is relative to the base URL, or absolute (fal hands out its own URLs).
        ``creates_task`` marks a paid submit: a fault after the request may have left this
        machine (read timeout, dropped connection, oversized answer) is then
        ``SubmitOutcomeUnknownError``, because the provider may have accepted it.
        """
        url = path if path.startswith(("http://", "https://")) else f"{self.base_url}{path}"
        # requests' timeout bounds each socket read; a provider that trickles its answer a
        # byte at a time would hold the worker for ever, so the whole call has a wall bound
        deadline = time.monotonic() + 2 * self.timeout
        try:
            with self.session.request(
                method, url, headers=headers or self.headers(), timeout=self.timeout,
                stream=True, **kwargs
            ) as resp:
                raw = _read_capped(resp, deadline)
                return to_provider_response(resp.status_code, raw, resp.headers.get("Retry-After"))
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            reason = f"{type(exc).__name__} calling {method} {_path_only(path)}"
            sent = not isinstance(exc, requests.RequestException) or not provably_not_sent(exc)
            if creates_task and sent:
                raise SubmitOutcomeUnknownError(reason) from exc
            raise TransientError(reason) from exc
        except TransientError as exc:
            if creates_task:
                raise SubmitOutcomeUnknownError(exc.reason, exc.sample) from exc
            raise


def _path_only(path: str) -> str:
    return path.split("?", 1)[0]


def provably_not_sent(exc: requests.RequestException) -> bool:
    """True when the request cannot have reached the provider.

    requests cannot always tell: a ``ConnectionError`` also covers a connection dropped after
    the request was written. Only a failure to connect at all (``ConnectTimeout``, or a
    ``ConnectionError`` caused by urllib3's ``NewConnectionError``: refused, DNS failure) or a
    request that could not even be built proves it. With the default adapter (no urllib3
    retries) that is the only attempt made.
    """
    if isinstance(exc, _UNSENDABLE):
        return True
    if isinstance(exc, requests.ConnectionError):
        cause = exc.args[0] if exc.args else None
        return isinstance(getattr(cause, "reason", cause), NewConnectionError)
    return False


_UNSENDABLE = (requests.ConnectTimeout, requests.exceptions.MissingSchema,
               requests.exceptions.InvalidSchema, requests.exceptions.InvalidURL,
               requests.exceptions.InvalidHeader)


def _read_capped(resp: requests.Response, deadline: float) -> bytes:
    chunks: list[bytes] = []
    total = 0
    # read1: one socket read at a time, so the deadline is checked between reads
    for chunk in iter(lambda: resp.raw.read1(65536, decode_content=True), b""):
        total += len(chunk)
        if total > MAX_RESPONSE_BYTES:
            raise TransientError(f"response larger than {MAX_RESPONSE_BYTES} bytes")
        if time.monotonic() > deadline:
            raise TransientError("the answer took too long to arrive")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds form); ``None`` if absent or odd."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    if seconds != seconds:  # NaN
        return None
    return max(0.0, min(seconds, 3600.0))


def to_provider_response(status: int, raw: bytes, retry_after: str | None) -> ProviderResponse:
    """Wrap raw bytes: JSON goes to ``body``; anything else leaves ``body`` as ``None``."""
    text = raw.decode("utf-8", errors="replace")
    body: Any = None
    try:
        body = json.loads(text) if text.strip() else None
    except (ValueError, RecursionError):  # deeply nested JSON overflows the decoder's stack
        body = None
    return ProviderResponse(
        http_status=status,
        body=body,
        text_sample=text[:TEXT_SAMPLE_CHARS],
        retry_after=parse_retry_after(retry_after),
    )


def http_error(
    resp: ProviderResponse, stage: Stage, message: str = "",
    moderation: Any = None,
) -> VideopollError:
    """What a non-2xx HTTP answer of a plain REST API (every direct family) means at ``stage``.

    | HTTP           | status                     | submit                              |
    |----------------|----------------------------|-------------------------------------|
    | 401, 403       | provider_auth_failed       | same                                |
    | 402            | insufficient_credits       | same                                |
    | 429            | RateLimitedError           | RateLimitedError (not accepted)     |
    | 404, 410       | TaskNotFoundError          | validation_failed (no such model)   |
    | 400, 422       | transient (a call fault)   | validation_failed, or moderation    |
    | other 4xx      | transient                  | unknown_provider_error              |
    | 5xx, 408, else | transient                  | outcome unknown (never resend)      |

    ``moderation`` is a predicate on the message: a 400 at submit whose text is a content
    policy refusal is ``moderation_rejected``.
    """
    status = resp.http_status
    text = message or resp.text_sample[:300]
    sample = resp.text_sample
    if status in (401, 403):
        return PermanentError(ErrorCode.PROVIDER_AUTH_FAILED, text)
    if status == 402:
        return PermanentError(ErrorCode.INSUFFICIENT_CREDITS, text)
    if status == 429:
        return RateLimitedError(f"provider rate limit (429): {text[:200]}", resp.retry_after)
    if stage == "status":
        if status in (404, 410):
            return TaskNotFoundError(f"task not found ({status}): {text[:200]}", sample)
        return TransientError(f"provider answered {status}", sample)
    if status in (400, 404, 422):
        code = (ErrorCode.MODERATION_REJECTED if moderation is not None and moderation(text)
                else ErrorCode.VALIDATION_FAILED)
        return PermanentError(code, text)
    if 400 <= status < 500 and status != 408:
        return PermanentError(ErrorCode.UNKNOWN_PROVIDER_ERROR, text)
    return SubmitOutcomeUnknownError(f"submit answered {status}", sample)


def task_id_from(value: Any, sample: str = "") -> str:
    """A provider task id from an accepted submit, or ``SubmitOutcomeUnknownError``: a task
    may exist that we cannot poll, so it must not be resent."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip() or len(value) > ID_MAX_CHARS:
        raise SubmitOutcomeUnknownError("submit accepted without a usable task id", sample)
    return value.strip()


def callback_task(value: Any) -> str:
    """The task id a callback names, or a 400."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip() or len(value) > ID_MAX_CHARS:
        raise CallbackRejected(400, "the callback names no task")
    return value.strip()


def same_origin(url: str, base: str) -> bool:
    """Whether ``url`` is on ``base``'s scheme, host and port (where a key may be sent)."""
    from urllib.parse import urlsplit

    a, b = urlsplit(url), urlsplit(base)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port) and bool(a.hostname)
