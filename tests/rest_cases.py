"""What the tests of the plain REST families share (Luma, Ark, MiniMax, Kling).

Recorded payloads live in ``tests/fixtures/<family>/``; ``expect`` checks one of them (or an
HTTP answer) against the verdict it must give, so each family's table is data only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import responses

from tests.listeners import Listener, Received
from videopoll.errors import PermanentError, VideopollError
from videopoll.fake_provider import FakeProvider, start_in_thread
from videopoll.models import GenerationSpec, PollState, ProviderResponse
from videopoll.providers import MODELS, PROVIDERS, get_model
from videopoll.providers.base import CallbackOutcome, CallbackRequest, Provider
from videopoll.providers.http import to_provider_response as _to_response

FIXTURES = Path(__file__).parent / "fixtures"
S, R, Q, F = PollState.SUCCEEDED, PollState.RUNNING, PollState.QUEUED, PollState.FAILED


def fixture(family: str, name: str) -> Any:
    return json.loads((FIXTURES / family / f"{name}.json").read_text())


def spec(model: str, images: list[str] | None = None, aspect: str = "16:9",
         seconds: int | None = None) -> GenerationSpec:
    info = MODELS[model] if ":" in model else get_model(model)
    return GenerationSpec(model=info.name, prompt="a red fox", aspect_ratio=aspect,
                          duration_seconds=seconds or info.default_duration,
                          image_urls=images or [])


def sent(call: Any) -> dict[str, Any]:
    """The JSON body of a request ``responses`` recorded."""
    body = json.loads(call.request.body)
    assert isinstance(body, dict)
    return body


def answer(status: int, body: Any = None, text: str | None = None) -> ProviderResponse:
    """A provider answer as the adapter's plumbing would wrap it."""
    raw = text if text is not None else json.dumps(body)
    return _to_response(status, raw.encode(), None)


def expect(provider: Provider, resp: ProviderResponse, expected: object) -> None:
    """``provider.normalize(resp)`` gives ``expected``: (state, first URL, error code), an
    exception class, or (PermanentError, code)."""
    if isinstance(expected, tuple) and isinstance(expected[0], PollState):
        result = provider.normalize(resp)
        assert (result.state, result.output_urls[0] if result.output_urls else None,
                result.error_code) == expected, result
        return
    fault, code = expected if isinstance(expected, tuple) else (expected, None)
    assert isinstance(fault, type) and issubclass(fault, VideopollError)
    with pytest.raises(fault) as info:
        provider.normalize(resp)
    if code is not None:
        assert isinstance(info.value, PermanentError) and info.value.code == code


def submit_fault(provider: Provider, model: str, url: str, status: int,
                 body: Any = None, text: str | None = None) -> VideopollError:
    """The fault one submit answer raises (``responses`` plays the answer)."""
    with responses.RequestsMock() as mocked:
        if text is not None:
            mocked.post(url, body=text, status=status, content_type="text/html")
        else:
            mocked.post(url, json=body, status=status)
        with pytest.raises(VideopollError) as info:
            provider.submit(get_model(model), spec(model), None)
    return info.value


def callback(provider: Provider, body: Any, headers: dict[str, str] | None = None
             ) -> CallbackOutcome:
    raw = json.dumps(body).encode()
    return provider.callback(CallbackRequest(raw=raw, body=body, headers=headers or {}))


@contextmanager
def against_fake(family: str) -> Iterator[tuple[FakeProvider, Provider]]:
    """The family's adapter pointed at a fake server of its own (real HTTP on loopback)."""
    fakes = start_in_thread()
    try:
        fakes.state.callback_delay = 0.05
        fake = next(f for f in fakes.server.fakes if family in f.families)
        yield fakes, PROVIDERS[family].with_config(timeout=5,
                                                   **fake.config(fakes.server.base_url))
    finally:
        fakes.stop()


def pushed(family: str, prompt: str = "ok1", images: list[str] | None = None,
           expected: int = 1) -> tuple[str, list[Received], Provider]:
    """Submit through the family's fake with a callback URL; (task id, what the fake POSTed
    to it, the adapter) once ``expected`` requests arrived."""
    listener = Listener()
    try:
        with against_fake(family) as (_, provider):
            model = next(m for m in MODELS.values() if m.family == family)
            task_id = provider.submit(model, spec(model.qualified, images).model_copy(
                update={"prompt": prompt}), f"{listener.url}/callbacks/{family}?token=t")
            deadline = time.monotonic() + 5
            while len(listener.received) < expected and time.monotonic() < deadline:
                time.sleep(0.02)
        return task_id, list(listener.received), provider
    finally:
        listener.stop()
