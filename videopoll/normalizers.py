"""The normalizer chain: every provider answer becomes one ``PollResult`` or one typed fault.

``normalize`` works in three steps, and no provider answer may get past them as a crash:

1. **Envelope.** The HTTP status, then the KIE body ``code``, are judged by the one code table
   in ``kie_common.error_for`` (faults are exceptions the poller acts on). Two exceptions to
   "the code decides": when a non-200 envelope wraps a *failed task record* (a Market callback
   says 501 "Playground task failed." around ``failCode`` "500"), the record is the more
   specific verdict; and record-info 422 "record result data is blank" means done without an
   output (a URL-less success, which the poller's missing-output budget ends).
2. **Chain.** Each parser in ``CHAIN`` is asked in order; the first that recognises the shape
   wins. Order matters because shapes overlap: the specific KIE shapes (``successFlag``,
   ``state`` + ``resultJson``) come before the loose legacy ones, which would otherwise match
   a KIE body by accident (``data.video_url`` could sit beside ``successFlag``). A success
   without a usable URL falls through to the later parsers, the ``fallback`` ones last, which
   dig a URL out of fields the first parser did not read; if none finds one the success counts
   as "not ready yet". A body no parser recognises is a ``TransientError`` with a sample.
3. **Net.** Parsers read every field defensively (wrong types, numbers as strings, JSON as
   string or object). Should one still raise, the bug is logged with its traceback and becomes
   a ``TransientError`` whose reason starts with ``PARSER_BUG``, never a crashed poll.

Unknown state values (a ``successFlag`` or ``state`` outside the documented sets) are read as
"running" so the deadline ends the job (providers.md §10.1), and are logged as a warning once
per (parser, value) — never silently.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any, ClassVar

from videopoll.errors import TransientError, VideopollError
from videopoll.models import PollResult, PollState, ProviderResponse
from videopoll.providers.kie_common import (
    RESULT_BLANK,
    as_dict,
    as_int,
    as_progress,
    as_text,
    classify_failure,
    envelope,
    error_for,
    result_json,
    short_repr,
)
from videopoll.redact import redact

log = logging.getLogger(__name__)

VIDEO_EXT = re.compile(r"\.(mp4|mov|webm|m4v)(\?|$)", re.IGNORECASE)
PARSER_BUG = "normalizer bug"
# Codes about our request rather than the task: a record in ``data`` cannot overrule them.
REQUEST_CODES = frozenset({401, 402, 403, 404, 408, 429, 455})
_WARNED: set[tuple[str, str]] = set()
_WARNED_MAX = 1024  # bounded: a provider inventing values must not grow memory forever


def _urls(value: Any, depth: int = 0) -> list[str]:
    """http(s) URLs from a list, a single string, or a JSON-array string (KIE does all three)."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("[") and depth == 0:
            try:
                return _urls(json.loads(text), depth + 1)
            except (ValueError, RecursionError):
                return []
        return [text] if text.startswith(("http://", "https://")) else []
    if isinstance(value, list) and depth < 2:
        return [u for item in value for u in _urls(item, depth + 1)]
    return []


def _first_urls(place: dict[str, Any], *fields: str) -> list[str]:
    """URLs of the first field that has any: the order says which output is the video."""
    for field in fields:
        if urls := _urls(place.get(field)):
            return urls
    return []


def _data(body: Any) -> dict[str, Any] | None:
    data = body.get("data") if isinstance(body, dict) else None
    return data if isinstance(data, dict) else None


def warn_unknown(parser: str, field: str, value: Any) -> None:
    """Log an undocumented state value once per (parser, value); it is read as running."""
    shown = short_repr(value)
    key = (parser, shown)
    if key in _WARNED:
        return
    if len(_WARNED) < _WARNED_MAX:
        _WARNED.add(key)
    log.warning("%s: undocumented %s %s, treated as running until the deadline",
                parser, field, shown)


class Normalizer:
    name: ClassVar[str]
    fallback: ClassVar[bool] = False

    def parse(self, body: Any) -> PollResult | None:
        raise NotImplementedError

    def result(self, state: PollState, **kw: Any) -> PollResult:
        return PollResult(state=state, parser=self.name, **kw)


class VeoRecordInfoNormalizer(Normalizer):
    """``data.successFlag`` 0/1/2/3 with ``data.response`` URL lists (KIE Veo record-info)."""

    name = "veo_record_info"

    def parse(self, body: Any) -> PollResult | None:
        data = _data(body)
        if data is None or "successFlag" not in data:
            return None
        flag = as_int(data.get("successFlag"))
        if flag == 1:
            # An extend task's resultUrls is the new segment; fullResultUrls is the stitched
            # video the user asked for (providers.md §1.8). originUrls is only a fallback.
            urls = _first_urls(as_dict(data.get("response")), "fullResultUrls", "resultUrls")
            return self.result(PollState.SUCCEEDED, output_urls=urls)
        if flag in (2, 3):
            message = as_text(data.get("errorMessage"))
            code = as_int(data.get("errorCode"))
            return self.result(PollState.FAILED, error_code=classify_failure(code, message),
                               provider_message=f"{code or ''} {message}".strip())
        if flag != 0:
            warn_unknown(self.name, "successFlag", data.get("successFlag"))
        return self.result(PollState.RUNNING)


class MarketRecordNormalizer(Normalizer):
    """``data.state`` with ``resultJson`` as a JSON string or object (KIE Market recordInfo)."""

    name = "market_record"
    QUEUED: ClassVar[frozenset[str]] = frozenset({"waiting", "queuing"})
    KNOWN: ClassVar[frozenset[str]] = QUEUED | {"generating", "success", "fail"}

    def parse(self, body: Any) -> PollResult | None:
        data = _data(body)
        if data is None or "state" not in data or "taskId" not in data:
            return None
        raw = data.get("state")
        state = raw.strip().lower() if isinstance(raw, str) else ""
        if state == "success":
            urls = _urls(result_json(data.get("resultJson")).get("resultUrls"))
            return self.result(PollState.SUCCEEDED, output_urls=urls, progress=100)
        if state == "fail":
            message = as_text(data.get("failMsg"))
            fail_code = data.get("failCode")
            return self.result(
                PollState.FAILED, error_code=classify_failure(as_int(fail_code), message),
                provider_message=f"{as_text(fail_code)} {message}".strip(),
            )
        if state not in self.KNOWN:
            warn_unknown(self.name, "state", raw)
        queued = state in self.QUEUED
        return self.result(PollState.QUEUED if queued else PollState.RUNNING,
                           progress=as_progress(data.get("progress")))


class VeoCallbackNormalizer(Normalizer):
    """Callback shape: ``code`` + ``data.info.resultUrls`` (array or JSON-array string)."""

    name = "veo_callback"

    def parse(self, body: Any) -> PollResult | None:
        data = _data(body)
        if data is None or not isinstance(data.get("info"), dict):
            return None
        urls = _first_urls(data["info"], "fullResultUrls", "resultUrls")
        return self.result(PollState.SUCCEEDED, output_urls=urls)


class FlatStatusNormalizer(Normalizer):
    """Legacy ``{"status": "completed", "videoUrl": …}``."""

    name = "flat_status"
    DONE: ClassVar[set[str]] = {"completed", "success", "succeeded"}
    FAILED: ClassVar[set[str]] = {"failed", "error", "fail"}

    def parse(self, body: Any) -> PollResult | None:
        if not isinstance(body, dict) or not isinstance(body.get("status"), str):
            return None
        message = as_text(body.get("error") or body.get("message"))
        return self.from_status(body["status"], body.get("videoUrl"), message)

    def from_status(self, status: str, url: Any, message: str) -> PollResult:
        """Legacy shapes share one status vocabulary; only where the URL sits differs."""
        status = status.lower()
        if status in self.DONE:
            return self.result(PollState.SUCCEEDED, output_urls=_urls(url))
        if status in self.FAILED:
            return self.result(PollState.FAILED, error_code=classify_failure(None, message),
                               provider_message=message)
        return self.result(PollState.RUNNING)


class NestedJobNormalizer(FlatStatusNormalizer):
    """Legacy ``{"job": {"status": "success", "result": {"url": …}}}``."""

    name = "nested_job"

    def parse(self, body: Any) -> PollResult | None:
        job = body.get("job") if isinstance(body, dict) else None
        if not isinstance(job, dict) or not isinstance(job.get("status"), str):
            return None
        url = as_dict(job.get("result")).get("url")
        return self.from_status(job["status"], url, as_text(job.get("error")))


class DataVideoUrlNormalizer(Normalizer):
    """Legacy ``{"data": {"video_url": …}}``: a URL means done; its absence means nothing."""

    name = "data_video_url"

    def parse(self, body: Any) -> PollResult | None:
        data = _data(body)
        urls = _urls(data.get("video_url")) if data is not None else []
        return self.result(PollState.SUCCEEDED, output_urls=urls) if urls else None


class AlternateUrlFieldsNormalizer(Normalizer):
    """Fallback: URL lists the primary parsers skip (Veo originUrls, Market
    resultWaterMarkUrls)."""

    name = "alternate_url_fields"
    fallback = True
    FIELDS = ("fullResultUrls", "originUrls", "resultWaterMarkUrls", "resultUrls")

    def parse(self, body: Any) -> PollResult | None:
        data = _data(body)
        if data is None:
            return None
        places = [data, as_dict(data.get("response")), as_dict(data.get("info")),
                  result_json(data.get("resultJson"))]
        for place in places:
            if urls := _first_urls(place, *self.FIELDS):
                return self.result(PollState.SUCCEEDED, output_urls=urls)
        return None


class AnyVideoUrlNormalizer(Normalizer):
    """Last resort: any string ending in a video extension anywhere in the body."""

    name = "any_video_url"
    fallback = True

    def parse(self, body: Any) -> PollResult | None:
        found: list[str] = []

        def walk(node: Any, depth: int) -> None:
            if depth > 6 or found:
                return
            if isinstance(node, dict):
                for value in node.values():
                    walk(value, depth + 1)
            elif isinstance(node, list):
                for value in node:
                    walk(value, depth + 1)
            elif isinstance(node, str) and VIDEO_EXT.search(node):
                found.extend(_urls(node, depth=1))

        walk(body, 0)
        return self.result(PollState.SUCCEEDED, output_urls=found) if found else None


RECORD_PARSERS: tuple[Normalizer, ...] = (VeoRecordInfoNormalizer(), MarketRecordNormalizer())
CHAIN: list[Normalizer] = [
    *RECORD_PARSERS,
    VeoCallbackNormalizer(),
    FlatStatusNormalizer(),
    NestedJobNormalizer(),
    DataVideoUrlNormalizer(),
    AlternateUrlFieldsNormalizer(),
    AnyVideoUrlNormalizer(),
]


def normalize(resp: ProviderResponse) -> PollResult:
    """One status answer → ``PollResult``; faults raise what the poller should do."""
    try:
        return _judge(resp)
    except VideopollError:
        raise
    except Exception as exc:  # the net (step 3): a bug of ours must not crash the poll
        log.exception("normalizer bug", extra={"sample": redact(resp.text_sample, 200)})
        raise TransientError(f"{PARSER_BUG}: {type(exc).__name__}", _sample(resp)) from exc


def _judge(resp: ProviderResponse) -> PollResult:
    code, message, _ = envelope(resp.body)
    if resp.http_status != 200:
        raise error_for(resp.http_status, message, "status", resp.retry_after, _sample(resp))
    if resp.body is None:
        raise TransientError("response is not JSON", resp.text_sample)
    if code is not None and code != 200:
        if code not in REQUEST_CODES and (failed := _failed_record(resp.body)) is not None:
            return failed
        if code == 422 and RESULT_BLANK.search(message):
            return PollResult(state=PollState.SUCCEEDED, parser="record_result_blank")
        raise error_for(code, message, "status", resp.retry_after, _sample(resp))
    return run_chain(resp.body, _sample(resp))


def _failed_record(body: Any) -> PollResult | None:
    """The verdict of a failed KIE task record inside a non-200 envelope, if there is one.

    Only the task-record shapes qualify: a generic ``{"code": 500, "status": "error"}`` looks
    like a legacy failure but is a fault of the call, not a verdict on the task.
    """
    for parser in RECORD_PARSERS:
        result = parser.parse(body)
        if result is not None:
            return result if result.state is PollState.FAILED else None
    return None


def _sample(resp: ProviderResponse) -> str:
    if resp.text_sample or resp.body is None:
        return resp.text_sample
    try:
        return json.dumps(resp.body)[:500]
    except (TypeError, ValueError, RecursionError):
        return short_repr(resp.body)


def run_chain(body: Any, sample: str = "") -> PollResult:
    """The first parser that recognises ``body`` wins; a success without URL falls through."""
    urlless: PollResult | None = None
    for parser in CHAIN:
        if parser.fallback and urlless is None:
            continue  # fallbacks only rescue a success without URL
        result = parser.parse(body)
        if result is None:
            continue
        if result.state is PollState.SUCCEEDED and not result.output_urls:
            urlless = urlless or result
            continue
        if urlless is not None and result.state is not PollState.SUCCEEDED:
            continue
        return result
    if urlless is not None:
        return urlless
    raise TransientError("unparseable response", sample)


__all__ = ["CHAIN", "PARSER_BUG", "Normalizer", "normalize", "run_chain"]
