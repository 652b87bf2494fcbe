"""The one interface every provider family implements.

An adapter knows endpoints, auth, how to submit and how to fetch status. It returns the raw
response (``ProviderResponse``) to the normalizer chain and never decides the job's fate.
Network faults are translated at this boundary into ``TransientError`` (``raise … from exc``),
so nothing above it imports ``requests`` exceptions. A submit (``creates_task``) is judged
more strictly: a fault after the request may have left this machine is
``SubmitOutcomeUnknownError``, because the provider may have created — and billed — the task.

To add a provider family: write one module here with a ``Provider`` subclass, add it to
``PROVIDERS`` and its models to ``MODELS`` in ``providers/__init__.py``, and record its
payloads as test fixtures.
"""

from __future__ import annotations

import abc
import json
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

import requests
import urllib3
from urllib3.exceptions import NewConnectionError

from videopoll.errors import CallbackRejected, SubmitOutcomeUnknownError, TransientError
from videopoll.models import GenerationSpec, ProviderResponse
from videopoll.ratelimit import Limit

TEXT_SAMPLE_CHARS = 500
MAX_RESPONSE_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class ModelInfo:
    """What one public model name means: which family serves it and which options it takes."""

    name: str
    family: str
    durations: tuple[int, ...]
    aspect_ratios: tuple[str, ...]
    max_images: int
    default_duration: int
    provider_ids: dict[str, str] = field(default_factory=dict)


class Provider(abc.ABC):
    """One provider API family (KIE Veo, KIE Market, …)."""

    family: ClassVar[str]
    # Rate limits are per provider *account*: families that share an API key share buckets
    # (KIE Veo and KIE Market both draw on one KIE account).
    rate_account: ClassVar[str] = ""
    status_limit: ClassVar[Limit] = Limit(rate=10.0, burst=10)
    pushes_callbacks: ClassVar[bool] = False  # the API can call us back when a task ends
    submit_limit: ClassVar[Limit] = Limit(rate=2.0, burst=20)

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        timeout: float = 15.0,
        session: requests.Session | None = None,
        webhook_key: str | None = None,
        callback_max_age: float = 300.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.session = session or requests.Session()
        self.webhook_key = webhook_key  # signs push callbacks, where the provider signs them
        self.callback_max_age = callback_max_age

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

    def callback_task_id(self, body: Any, headers: dict[str, str], now: float) -> str:
        """The task a push callback is about, after verifying it came from the provider.

        Raises ``CallbackRejected`` (401) for a bad signature or a stale timestamp, and
        (400) for a body that names no task. A callback never completes a job by itself: it
        only wakes the poller, and the status endpoint decides.
        """
        raise CallbackRejected(404, f"{self.family} does not send callbacks")

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def request(
        self, method: str, path: str, *, creates_task: bool = False, **kwargs: Any
    ) -> ProviderResponse:
        """Send one request and read at most ``MAX_RESPONSE_BYTES`` of the answer.

        ``creates_task`` marks a paid submit: a fault after the request may have left this
        machine (read timeout, dropped connection, oversized answer) is then
        ``SubmitOutcomeUnknownError``, because the provider may have accepted it.
        """
        url = f"{self.base_url}{path}"
        # requests' timeout bounds each socket read; a provider that trickles its answer a
        # byte at a time would hold the worker for ever, so the whole call has a wall bound
        deadline = time.monotonic() + 2 * self.timeout
        try:
            with self.session.request(
                method, url, headers=self.headers(), timeout=self.timeout, stream=True, **kwargs
            ) as resp:
                raw = _read_capped(resp, deadline)
                return to_provider_response(resp.status_code, raw, resp.headers.get("Retry-After"))
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            reason = f"{type(exc).__name__} calling {method} {path}"
            sent = not isinstance(exc, requests.RequestException) or not provably_not_sent(exc)
            if creates_task and sent:
                raise SubmitOutcomeUnknownError(reason) from exc
            raise TransientError(reason) from exc
        except TransientError as exc:
            if creates_task:
                raise SubmitOutcomeUnknownError(exc.reason, exc.sample) from exc
            raise


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
