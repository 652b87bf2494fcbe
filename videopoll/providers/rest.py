"""What the plain REST families share (Luma, Ark, MiniMax, Kling): one task object per id.

These APIs have the same exchange: ``POST`` creates a task and answers its id, ``GET`` reads
one task object whose single state field takes a documented set of values, and the provider
POSTs that object (or its id) to a per-request ``callback_url`` without signing it. What
differs is where each API puts its error code, so a family supplies:

- ``body_error(resp, stage)``: the fault a body code means, checked *before* the HTTP status
  (MiniMax and Kling answer HTTP 200 with a non-zero code, providers.md §10.3 note 1; Ark's
  ``error.code`` says more than its HTTP status). ``None`` leaves the HTTP status to decide.
- ``error_text(body)``: the provider's own message, for ``http_error``.
- ``chain``: its ordered normalizers (a ``TaskStateNormalizer`` subclass, then ``LAST_RESORT``).

Unsigned callbacks are proved by the URL token the API layer checks (``signs_callbacks``
False), so ``callback`` only reads the task id at ``callback_ids``.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar
from urllib.parse import quote

from videopoll.errors import SubmitOutcomeUnknownError, VideopollError
from videopoll.models import ErrorCode, PollResult, PollState, ProviderResponse
from videopoll.normalizers import Normalizer, guarded, json_body, run_chain, sample_of, warn_unknown
from videopoll.providers.base import CallbackOutcome, CallbackRequest, Provider
from videopoll.providers.fields import as_str, dig
from videopoll.providers.http import Stage, callback_task, http_error, task_id_from

# Failure wording across these APIs; their failure texts are mostly [UNCONFIRMED], so the
# words of every documented or reported refusal are matched (Luma "advanced moderation failed",
# Kling "risk control" / "content security policy", MiniMax "sensitive content").
_MODERATION = re.compile(
    r"moderat|content.?(polic|safety|security)|sensitive|nsfw|unsafe|prohibited|flagged|"
    r"violat|inappropriate|risk.?control|guardrail|policy",
    re.IGNORECASE,
)
_ASSET = re.compile(r"(fetch|download|load|read|access).{0,20}(image|frame|file|url)|"
                    r"(image|frame|url).{0,20}(unreachable|invalid|not accessible)", re.IGNORECASE)
_TIMEOUT = re.compile(r"time.?out|timed out|expired|deadline", re.IGNORECASE)
_CAPACITY = re.compile(r"rate.?limit|too many|concurren|overload|capacity", re.IGNORECASE)


def is_moderation(text: str) -> bool:
    return bool(_MODERATION.search(text or ""))


def classify_text(text: str, default: ErrorCode = ErrorCode.UNKNOWN_PROVIDER_ERROR) -> ErrorCode:
    """Taxonomy code of a failed task from its provider's words: moderation first (a refusal
    often also mentions the image or a limit), then a bad input asset, timeout, capacity."""
    if is_moderation(text):
        return ErrorCode.MODERATION_REJECTED
    if _ASSET.search(text or ""):
        return ErrorCode.ASSET_FETCH_FAILED
    if _TIMEOUT.search(text or ""):
        return ErrorCode.PROVIDER_TIMEOUT
    if _CAPACITY.search(text or ""):
        return ErrorCode.PROVIDER_RATE_LIMITED
    return default


def segment(task_id: str) -> str:
    """A task id as one URL path segment (ids are the provider's, never trusted as a path)."""
    return quote(task_id, safe="")


class TaskStateNormalizer(Normalizer):
    """A task object whose one state field takes documented values (providers.md §10.1).

    Subclasses say where the task object is (``task``), which values mean what (compared
    lower-cased), where the video is (``urls``) and what a failure means (``failure``).
    Undocumented values read as running, with a warning, so the deadline ends the job.
    """

    state_field: ClassVar[str] = "status"
    QUEUED: ClassVar[frozenset[str]] = frozenset()
    RUNNING: ClassVar[frozenset[str]] = frozenset()
    SUCCEEDED: ClassVar[frozenset[str]] = frozenset()
    FAILED: ClassVar[frozenset[str]] = frozenset()
    CANCELED: ClassVar[frozenset[str]] = frozenset()
    EXPIRED: ClassVar[frozenset[str]] = frozenset()

    def task(self, body: Any) -> dict[str, Any] | None:
        """The task object in ``body``; by default the body itself when it has an ``id``."""
        return body if isinstance(body, dict) and as_str(body.get("id")) else None

    def urls(self, task: dict[str, Any]) -> list[str]:
        raise NotImplementedError

    def failure(self, task: dict[str, Any]) -> tuple[ErrorCode, str]:
        raise NotImplementedError

    def failed(self, task: dict[str, Any]) -> bool:
        """Whether a task in a non-failure state is failed all the same (MiniMax's codes)."""
        return False

    def progress(self, task: dict[str, Any]) -> int | None:
        return None

    def parse(self, body: Any) -> PollResult | None:
        task = self.task(body)
        if task is None or not isinstance(task.get(self.state_field), str):
            return None
        raw = task[self.state_field]
        state = raw.strip().lower()
        if state in self.FAILED or self.failed(task):
            code, message = self.failure(task)
            return self.result(PollState.FAILED, error_code=code, provider_message=message)
        if state in self.SUCCEEDED:
            return self.result(PollState.SUCCEEDED, output_urls=self.urls(task), progress=100)
        if state in self.CANCELED:
            return self.result(PollState.FAILED, error_code=ErrorCode.CANCELED,
                               provider_message=f"the task was {state}")
        if state in self.EXPIRED:
            return self.result(PollState.FAILED, error_code=ErrorCode.PROVIDER_TIMEOUT,
                               provider_message=f"the task {state} before it ran")
        if state in self.QUEUED:
            return self.result(PollState.QUEUED, progress=self.progress(task))
        if state not in self.RUNNING:
            warn_unknown(self.name, self.state_field, raw)
        return self.result(PollState.RUNNING, progress=self.progress(task))


class RestProvider(Provider):
    """Base of the plain REST families: judging answers, reading callbacks, download auth."""

    pushes_callbacks = True  # each takes a per-request callback_url
    signs_callbacks = False  # none documents a signature: the URL token proves the caller
    chain: ClassVar[tuple[Normalizer, ...]] = ()
    # Where a callback body names the task, first match wins.
    callback_ids: ClassVar[tuple[tuple[str, ...], ...]] = (("id",),)

    def body_error(self, resp: ProviderResponse, stage: Stage) -> VideopollError | None:
        return None

    def error_text(self, body: Any) -> str:
        return ""

    def accepted(self, resp: ProviderResponse, *id_path: str) -> str:
        """The task id of an accepted create, or the fault that says what happened instead."""
        if (fault := self.body_error(resp, "submit")) is not None:
            raise fault
        if not 200 <= resp.http_status < 300:
            raise http_error(resp, "submit", self.error_text(resp.body), moderation=is_moderation)
        if not isinstance(resp.body, dict):  # 2xx but garbled: a task may exist
            raise SubmitOutcomeUnknownError("submit accepted with a body that is not JSON",
                                            resp.text_sample)
        return task_id_from(dig(resp.body, *id_path), resp.text_sample)

    def normalize(self, resp: ProviderResponse) -> PollResult:
        return guarded(resp, self.judge)

    def judge(self, resp: ProviderResponse) -> PollResult:
        if (fault := self.body_error(resp, "status")) is not None:
            raise fault
        if not 200 <= resp.http_status < 300:
            raise http_error(resp, "status", self.error_text(resp.body))
        return run_chain(self.chain, json_body(resp), sample_of(resp))

    def callback(self, req: CallbackRequest) -> CallbackOutcome:
        return CallbackOutcome(task_id=callback_task(self.named_task(req.body)))

    def named_task(self, body: Any) -> Any:
        for path in self.callback_ids:
            if (value := dig(body, *path)) not in (None, ""):
                return value
        return None

    def ask_cancel(self, path: str) -> bool:
        """``DELETE path``; True when the provider said yes. Best effort: a network fault is
        a no, and the job is canceled on our side whatever happens here."""
        resp = self.best_effort("DELETE", path)
        return resp is not None and self.body_error(resp, "status") is None
