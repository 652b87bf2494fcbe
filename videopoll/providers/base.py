"""The one interface every provider family implements.

A family owns everything about its API: endpoints and auth (``submit``, ``fetch``,
``cancel``), its ordered chain of answer shapes and its error mapping (``normalize``), its
push-callback check (``callback``), the headers its output downloads need
(``download_headers``), its settings (``config_class``, read from ``<PREFIX>_…`` variables)
and its models. The engine sees only this class and the registry in ``providers/__init__.py``.

Requests go through ``http.send``, which bounds them and translates network faults into our
errors (a submit whose answer was lost is ``SubmitOutcomeUnknownError``: never resent).

To add a provider family: write ``providers/<family>.py`` (or a package) with a ``Provider``
subclass, its ``ProviderConfig`` and its ``models``; add one line to ``PROVIDERS``; record its
payloads under ``tests/fixtures/<family>/`` and teach the fake provider its routes
(``fake_provider/<family>.py``) so the contract test runs it end to end.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import requests
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from videopoll.errors import CallbackRejected, TransientError
from videopoll.models import GenerationSpec, JobRecord, PollResult, ProviderResponse
from videopoll.providers.http import ProviderSession, same_origin, send
from videopoll.ratelimit import Limit


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
        self.session = session or ProviderSession()
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

    def status_of(self, job: JobRecord) -> ProviderResponse:
        """The status request a polled job makes: ``fetch`` of its task (and rendition).

        A family whose answer means something else for some jobs reshapes it here, where the
        job is known (KIE Veo: an extend's video is the stitched one)."""
        assert job.provider_task_id is not None
        return self.fetch(job.provider_task_id, job.variant)

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

    def proves_callbacks(self) -> bool:
        """Whether this adapter, as configured, verifies a callback's signature. If it does
        not, the callback URL carries our own token instead (``polling.callback_url_for``),
        and the API refuses a callback without it."""
        return self.signs_callbacks

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
        """One request to the API (``path`` relative to the base URL, or absolute: fal hands
        out its own URLs); ``creates_task`` marks a paid submit (see ``http.send``)."""
        url = path if path.startswith(("http://", "https://")) else f"{self.base_url}{path}"
        return send(self.session, method, url, headers=headers or self.headers(),
                    timeout=self.timeout, creates_task=creates_task, **kwargs)
