"""The HTTP boundary every adapter shares: one bounded request, and what a status means.

``send`` reads at most ``MAX_RESPONSE_BYTES`` within a wall-time bound and translates network
faults into our errors (``raise … from exc``), so nothing above it imports ``requests``
exceptions. A submit (``creates_task``) is judged more strictly: a fault after the request may
have left this machine is ``SubmitOutcomeUnknownError``, because the provider may have created
— and billed — the task (invariant 9). ``http_error`` is the status table of a plain REST API;
families with body codes (KIE, MiniMax, Kling) judge those first.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Literal
from urllib.parse import urlsplit

import requests
import urllib3
from requests.sessions import merge_setting as _merge_setting
from requests.utils import get_environ_proxies as _get_environ_proxies
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
from videopoll.models import ID_MAX_CHARS, ErrorCode, ProviderResponse

TEXT_SAMPLE_CHARS = 500
MAX_RESPONSE_BYTES = 2 * 1024 * 1024
# requests' helpers carry no type hints
merge_setting: Any = _merge_setting
get_environ_proxies: Any = _get_environ_proxies
Stage = Literal["submit", "status"]


class ProviderSession(requests.Session):
    """A ``requests`` session that reads the environment once per origin, not per request.

    A session that trusts the environment (proxies, ``NO_PROXY``, the CA bundle) re-reads it
    on every request: proxies by walking every environment variable twice, which was a fifth
    of a status poll's CPU on a machine with 200 of them. A worker's environment does not
    change, so the answer for each origin (scheme, host, port) is kept; what requests does
    with it is unchanged (an explicit ``proxies`` or ``verify`` argument still wins).
    """

    MAX_ORIGINS = 64  # providers use a handful (fal hands out URLs on a second host)

    def __init__(self) -> None:
        super().__init__()
        self._proxies_for: dict[tuple[str, str | None, int | None], dict[str, str]] = {}
        self._ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get(
            "CURL_CA_BUNDLE")

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any,
                                   cert: Any) -> Any:  # requests-stubs: a TypedDict
        if not self.trust_env:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        parts = urlsplit(url)
        origin = (parts.scheme, parts.hostname, parts.port)
        no_proxy = proxies.get("no_proxy") if proxies else None
        found = self._proxies_for.get(origin) if no_proxy is None else None
        if found is None:
            found = get_environ_proxies(url, no_proxy=no_proxy)
            if no_proxy is None and len(self._proxies_for) < self.MAX_ORIGINS:
                self._proxies_for[origin] = found
        merged = dict(proxies or {})
        for key, value in found.items():
            merged.setdefault(key, value)
        if verify is True or verify is None:
            verify = self._ca_bundle or verify
        return {"proxies": merge_setting(merged, self.proxies),
                "stream": merge_setting(stream, self.stream),
                "verify": merge_setting(verify, self.verify),
                "cert": merge_setting(cert, self.cert)}


def send(session: requests.Session, method: str, url: str, *, headers: dict[str, str],
         timeout: float, creates_task: bool = False, **kwargs: Any) -> ProviderResponse:
    """Send one request and read at most ``MAX_RESPONSE_BYTES`` of the answer.

    ``creates_task`` marks a paid submit: a fault after the request may have left this
    machine (read timeout, dropped connection, oversized answer) is then
    ``SubmitOutcomeUnknownError``, because the provider may have accepted it.
    """
    # requests' timeout bounds each socket read; a provider that trickles its answer a
    # byte at a time would hold the worker for ever, so the whole call has a wall bound
    deadline = time.monotonic() + 2 * timeout
    try:
        with session.request(method, url, headers=headers, timeout=timeout, stream=True,
                             **kwargs) as resp:
            raw = _read_capped(resp, deadline)
            return to_provider_response(resp.status_code, raw, resp.headers.get("Retry-After"))
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        reason = f"{type(exc).__name__} calling {method} {_path_only(url)}"
        sent = not isinstance(exc, requests.RequestException) or not provably_not_sent(exc)
        if creates_task and sent:
            raise SubmitOutcomeUnknownError(reason) from exc
        raise TransientError(reason) from exc
    except TransientError as exc:
        if creates_task:
            raise SubmitOutcomeUnknownError(exc.reason, exc.sample) from exc
        raise


def _path_only(url: str) -> str:
    """The path of ``url``, never its query string (which may carry a key) nor its host."""
    return urlsplit(url).path or "/"


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
    a, b = urlsplit(url), urlsplit(base)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port) and bool(a.hostname)
