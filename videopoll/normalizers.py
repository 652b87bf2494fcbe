"""The normalizer chain: every provider answer becomes one ``PollResult``.

``normalize`` first judges the HTTP status and the KIE envelope code (faults are exceptions the
poller acts on), then asks each parser in ``CHAIN`` in order; the first one that recognises the
shape wins. Order matters because shapes overlap: the specific KIE shapes (``successFlag``,
``state`` + ``resultJson``) come before the loose legacy ones, which would otherwise match a
KIE body by accident (``data.video_url`` could sit beside ``successFlag``). A success without a
usable URL falls through to the later parsers, the ``fallback`` ones last, which dig a URL out of
fields the first parser did not read; if none finds one the success counts as "not ready yet".
"""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any, ClassVar

from videopoll.errors import PermanentError, RateLimitedError, TransientError
from videopoll.models import ErrorCode, PollResult, PollState, ProviderResponse
from videopoll.providers.kie_common import (
    envelope,
    is_asset_failure,
    is_moderation,
    raise_for_code,
)

VIDEO_EXT = re.compile(r"\.(mp4|mov|webm|m4v)(\?|$)", re.IGNORECASE)
NOT_YET_CODES = (404, 422)  # "record is null": the record may not exist yet just after submit


def _urls(value: Any) -> list[str]:
    """http(s) URLs from a list, a single string, or a JSON-array string (KIE does all three)."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                return _urls(json.loads(text))
            except ValueError:
                return []
        return [text] if text.startswith(("http://", "https://")) else []
    if isinstance(value, list):
        return [u for item in value for u in _urls(item)]
    return []


def _classify(message: str, timeout_hint: bool = False) -> ErrorCode:
    if is_moderation(message):
        return ErrorCode.MODERATION_REJECTED
    if is_asset_failure(message):
        return ErrorCode.ASSET_FETCH_FAILED
    if timeout_hint or "timeout" in message.lower():
        return ErrorCode.PROVIDER_TIMEOUT
    return ErrorCode.UNKNOWN_PROVIDER_ERROR


class Normalizer:
    name: ClassVar[str]
    fallback: ClassVar[bool] = False

    def parse(self, body: Any) -> PollResult | None:
        raise NotImplementedError

    def result(self, state: PollState, **kw: Any) -> PollResult:
        return PollResult(state=state, parser=self.name, **kw)


class VeoRecordInfoNormalizer(Normalizer):
    """``data.successFlag`` 0/1/2/3 with ``data.response.resultUrls`` (KIE Veo record-info)."""

    name = "veo_record_info"

    def parse(self, body: Any) -> PollResult | None:
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict) or "successFlag" not in data:
            return None
        flag = str(data.get("successFlag"))
        response = data.get("response")
        response = response if isinstance(response, dict) else {}
        if flag == "1":
            return self.result(PollState.SUCCEEDED, output_urls=_urls(response.get("resultUrls")))
        if flag in ("2", "3"):
            message = str(data.get("errorMessage") or "")
            code = _classify(message)
            if data.get("errorCode") == 400 and code is ErrorCode.UNKNOWN_PROVIDER_ERROR:
                code = ErrorCode.VALIDATION_FAILED
            return self.result(PollState.FAILED, error_code=code, provider_message=message)
        return self.result(PollState.RUNNING)


class MarketRecordNormalizer(Normalizer):
    """``data.state`` with ``resultJson`` as a JSON string (KIE Market recordInfo/callback)."""

    name = "market_record"
    QUEUED: ClassVar[set[str]] = {"waiting", "queuing"}

    def parse(self, body: Any) -> PollResult | None:
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict) or "state" not in data or "taskId" not in data:
            return None
        state = str(data.get("state"))
        progress = data.get("progress") if isinstance(data.get("progress"), int) else None
        if state == "success":
            try:
                result = json.loads(data.get("resultJson") or "{}")
            except ValueError:
                result = {}
            urls = _urls(result.get("resultUrls")) if isinstance(result, dict) else []
            return self.result(PollState.SUCCEEDED, output_urls=urls, progress=100)
        if state == "fail":
            message = str(data.get("failMsg") or "")
            return self.result(PollState.FAILED, error_code=_classify(message),
                               provider_message=f"{data.get('failCode', '')} {message}".strip())
        queued = state in self.QUEUED
        return self.result(PollState.QUEUED if queued else PollState.RUNNING, progress=progress)


class VeoCallbackNormalizer(Normalizer):
    """Callback shape: ``code`` + ``data.info.resultUrls`` (array or JSON-array string)."""

    name = "veo_callback"

    def parse(self, body: Any) -> PollResult | None:
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict) or not isinstance(data.get("info"), dict):
            return None
        return self.result(PollState.SUCCEEDED, output_urls=_urls(data["info"].get("resultUrls")))


class FlatStatusNormalizer(Normalizer):
    """Legacy ``{"status": "completed", "videoUrl": …}``."""

    name = "flat_status"
    DONE: ClassVar[set[str]] = {"completed", "success", "succeeded"}
    FAILED: ClassVar[set[str]] = {"failed", "error", "fail"}

    def parse(self, body: Any) -> PollResult | None:
        if not isinstance(body, dict) or not isinstance(body.get("status"), str):
            return None
        message = str(body.get("error") or body.get("message") or "")
        return self.from_status(body["status"], body.get("videoUrl"), message)

    def from_status(self, status: str, url: Any, message: str) -> PollResult:
        """Legacy shapes share one status vocabulary; only where the URL sits differs."""
        status = status.lower()
        if status in self.DONE:
            return self.result(PollState.SUCCEEDED, output_urls=_urls(url))
        if status in self.FAILED:
            return self.result(PollState.FAILED, error_code=_classify(message),
                               provider_message=message)
        return self.result(PollState.RUNNING)


class NestedJobNormalizer(FlatStatusNormalizer):
    """Legacy ``{"job": {"status": "success", "result": {"url": …}}}``."""

    name = "nested_job"

    def parse(self, body: Any) -> PollResult | None:
        job = body.get("job") if isinstance(body, dict) else None
        if not isinstance(job, dict) or not isinstance(job.get("status"), str):
            return None
        result = job.get("result")
        url = result.get("url") if isinstance(result, dict) else None
        return self.from_status(job["status"], url, str(job.get("error") or ""))


class DataVideoUrlNormalizer(Normalizer):
    """Legacy ``{"data": {"video_url": …}}``: a URL means done; its absence means nothing."""

    name = "data_video_url"

    def parse(self, body: Any) -> PollResult | None:
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict) or not _urls(data.get("video_url")):
            return None
        return self.result(PollState.SUCCEEDED, output_urls=_urls(data["video_url"]))


class AlternateUrlFieldsNormalizer(Normalizer):
    """Fallback: URL lists the primary parsers skip (Veo originUrls/fullResultUrls, Market
    resultWaterMarkUrls)."""

    name = "alternate_url_fields"
    fallback = True
    FIELDS = ("fullResultUrls", "originUrls", "resultWaterMarkUrls", "resultUrls")

    def parse(self, body: Any) -> PollResult | None:
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            return None
        places = [data, data.get("response"), data.get("info")]
        with contextlib.suppress(TypeError, ValueError):
            places.append(json.loads(data.get("resultJson") or "null"))
        for place in places:
            if isinstance(place, dict):
                for field in self.FIELDS:
                    if urls := _urls(place.get(field)):
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
            elif isinstance(node, str) and VIDEO_EXT.search(node) and _urls(node):
                found.append(node)

        walk(body, 0)
        return self.result(PollState.SUCCEEDED, output_urls=found) if found else None


CHAIN: list[Normalizer] = [
    VeoRecordInfoNormalizer(),
    MarketRecordNormalizer(),
    VeoCallbackNormalizer(),
    FlatStatusNormalizer(),
    NestedJobNormalizer(),
    DataVideoUrlNormalizer(),
    AlternateUrlFieldsNormalizer(),
    AnyVideoUrlNormalizer(),
]


def normalize(resp: ProviderResponse) -> PollResult:
    """One provider answer → ``PollResult``; faults raise what the poller should do."""
    code, message, _ = envelope(resp.body)
    if resp.http_status == 429:
        raise RateLimitedError(f"HTTP 429: {message}", resp.retry_after)
    if resp.http_status != 200:
        raise_for_code(resp.http_status, message, resp.retry_after, resp.text_sample)
        raise TransientError(f"HTTP {resp.http_status}", resp.text_sample)
    if resp.body is None:
        raise TransientError("response is not JSON", resp.text_sample)
    if code is not None and code != 200:
        raise_for_code(code, message, resp.retry_after, resp.text_sample)
        if code in NOT_YET_CODES:
            raise TransientError(f"record not available ({code}): {message}", resp.text_sample)
        raise PermanentError(_classify(message), message)
    return run_chain(resp.body, resp.text_sample)


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
    raise TransientError("unparseable response", sample or json.dumps(body)[:500])
