"""What every fake provider family shares: the task book, requests and replies, callbacks.

One fake server plays every family, each under its own path prefix (``/openai/…``,
``/replicate/…``; KIE at the root, as before), so one process on one port stands in for all
the providers in the demo and the tests. A family is a ``FakeFamily``: it answers the routes
of its API in the shapes of providers.md and turns the scripted ``Step`` of a task
(``scenarios``) into that API's words. The task book (``FakeState``) counts every poll,
download and submit so tests can assert what the service did.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from videopoll.fake_provider.scenarios import Scenario, parse_scenario, step_for


@dataclass
class FakeRequest:
    """One request to a family, its path already stripped of the family's prefix."""

    method: str
    path: str
    query: dict[str, str]
    headers: Mapping[str, str]  # lower-cased names
    raw: bytes
    base_url: str  # this family's base: the server's URL plus its prefix
    server_url: str

    @property
    def body(self) -> Any:
        try:
            return json.loads(self.raw or b"null")
        except ValueError:
            return None

    def json_body(self) -> dict[str, Any]:
        body = self.body
        return body if isinstance(body, dict) else {}

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


@dataclass
class FakeReply:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (a slow provider)


def reply(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> FakeReply:
    return FakeReply(status, json.dumps(payload).encode(), headers=headers or {})


def text_reply(status: int, text: str, content_type: str = "text/html") -> FakeReply:
    return FakeReply(status, text.encode(), content_type)


@dataclass(frozen=True)
class Outbound:
    """A callback the fake sends (or hands a test): headers and the exact body bytes, and the
    query parameters the callback URL carried (fal's ``app``, which our adapter added)."""

    headers: dict[str, str]
    raw: bytes
    query: dict[str, str] = field(default_factory=dict)


class FakeState:
    """Per-task poll counters and call statistics, shared by the handler threads."""

    def __init__(self, api_key: str | None) -> None:
        self.api_key = api_key
        self.webhook_key: str | None = None  # KIE signs callbacks with its webhookHmacKey
        self.callback_delay = 1.0  # seconds from submit until the task finishes and calls back
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with getattr(self, "lock", threading.Lock()):
            self.polls: dict[str, int] = {}
            self.downloads: dict[str, int] = {}
            self.submits = 0
            self.prompts: dict[str, str] = {}
            self.submitted: dict[str, Any] = {}  # task -> the submit body it came from
            self.finished: set[str] = set()  # tasks that called back: their next poll is final
            self.callbacks: dict[str, int] = {}  # task -> HTTP status our callback got
            self.canceled: set[str] = set()

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {"polls": dict(self.polls), "downloads": dict(self.downloads),
                    "submits": self.submits, "total_polls": sum(self.polls.values()),
                    "callbacks": dict(self.callbacks), "canceled": sorted(self.canceled),
                    "submitted": dict(self.submitted)}

    def new_task(self, kind: str, prompt: str, submitted: Any = None) -> str:
        """A task id that embeds its scenario, so a restarted fake plays the same script."""
        scenario = parse_scenario(prompt)
        task_id = f"{kind}_{scenario.token}_{secrets.token_hex(4)}"
        with self.lock:
            self.submits += 1
            self.prompts[task_id] = prompt
            self.submitted[task_id] = submitted
        return task_id

    def poll(self, task_id: str, key: str | None = None) -> tuple[Scenario, str, int]:
        """Count one status request; (scenario, step kind, k) of its answer."""
        scenario = parse_scenario(task_id)
        counter = key or task_id
        with self.lock:
            k = self.polls[counter] = self.polls.get(counter, 0) + 1
            if task_id in self.canceled:
                return scenario, "canceled", k
            if task_id in self.finished:  # it called back: it is done now
                k = max(k, scenario.n + 1)
        return scenario, step_for(scenario, k).kind, k

    def final_step(self, task_id: str) -> str:
        scenario = parse_scenario(task_id)
        return step_for(scenario, scenario.n + 1).kind

    def call_back_later(self, task_id: str, url: str,
                        build: Callable[[str], Outbound | None]) -> None:
        """After ``callback_delay`` the task is done: POST what ``build`` makes of its final
        step to ``url`` and record the status our service answered."""
        def run() -> None:
            time.sleep(self.callback_delay)
            with self.lock:
                self.finished.add(task_id)
            out = build(self.final_step(task_id))
            if out is None:
                return
            status = post(url, out)
            with self.lock:
                self.callbacks[task_id] = status

        threading.Thread(target=run, daemon=True).start()


def post(url: str, out: Outbound) -> int:
    """POST a callback; the HTTP status it got (0 when nothing answered)."""
    headers = {"Content-Type": "application/json", **out.headers}
    request = urllib.request.Request(url, data=out.raw, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=15) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


class FakeFamily:
    """One provider API, played. Subclasses set ``prefix``/``config_name`` and answer routes.

    ``config`` is what our adapter needs to talk to this fake (its ``ProviderConfig`` fields);
    ``callback`` builds the push callback the provider would send for a task's final step, so
    the fake can send it and the contract test can send it (and a forgery) by hand.
    """

    prefix: ClassVar[str]  # "" = the server's root (KIE)
    config_name: ClassVar[str]
    families: ClassVar[tuple[str, ...]]  # the adapter families this fake serves
    api_key: ClassVar[str] = "fake-key"

    def __init__(self, state: FakeState) -> None:
        self.state = state

    def config(self, server_url: str) -> dict[str, Any]:
        return {"base_url": self.base_url(server_url), "api_key": self.api_key}

    def base_url(self, server_url: str) -> str:
        return f"{server_url}/{self.prefix}" if self.prefix else server_url

    def handle(self, req: FakeRequest) -> FakeReply | None:
        """The answer to ``req``, or ``None`` for a path this family does not serve."""
        raise NotImplementedError

    def callback(self, task_id: str, step: str, forged: bool = False) -> Outbound | None:
        """The callback for ``task_id`` ending in ``step``; ``forged`` signs it wrongly."""
        return None

    def authorized(self, req: FakeRequest) -> bool:
        """The family's own auth header carries ``api_key`` (Bearer by default)."""
        return req.header("authorization") == f"Bearer {self.api_key}"

    @staticmethod
    def file_url(req: FakeRequest, task_id: str) -> str:
        """Where the fake serves a task's video (a real MP4)."""
        return f"{req.server_url}/files/{task_id}.mp4"
