"""KIE's answer shapes, in chain order, and the envelope judgement in front of them.

``judge`` works in two steps:

1. **Envelope.** The HTTP status, then the body ``code``, are judged by the one code table in
   ``common.error_for``. Two exceptions to "the code decides": when a non-200 envelope wraps
   a *failed task record* (a Market callback says 501 "Playground task failed." around
   ``failCode`` "500"), the record is the more specific verdict; and record-info 422 "record
   result data is blank" means done without an output (a URL-less success, which the
   poller's missing-output budget ends).
2. **Chain.** The family's own chain in order (``CHAIN`` for Veo, ``MARKET_CHAIN``,
   ``RUNWAY_CHAIN``): its own endpoint's record parser first, then the other record shapes
   (``successFlag``, ``state`` + ``resultJson``, Runway's ``videoInfo``), all before the
   loose legacy shapes of the original workflow, which would otherwise match a KIE body by
   accident (``data.video_url`` could sit beside ``successFlag``). The fallbacks last rescue
   a success without URL from fields the first parser did not read.
"""

from __future__ import annotations

from typing import Any, ClassVar

from videopoll.errors import TransientError
from videopoll.models import ErrorCode, PollResult, PollState, ProviderResponse
from videopoll.normalizers import LAST_RESORT, Normalizer, run_chain, sample_of, warn_unknown
from videopoll.providers.fields import (
    as_dict,
    as_int,
    as_progress,
    as_text,
    first_urls,
    http_urls,
    json_object,
)
from videopoll.providers.kie.common import RESULT_BLANK, classify_failure, envelope, error_for

# Codes about our request rather than the task: a record in ``data`` cannot overrule them.
REQUEST_CODES = frozenset({401, 402, 403, 404, 408, 429, 455})


def _data(body: Any) -> dict[str, Any] | None:
    data = body.get("data") if isinstance(body, dict) else None
    return data if isinstance(data, dict) else None


class VeoRecordInfoNormalizer(Normalizer):
    """``data.successFlag`` 0/1/2/3 with ``data.response`` URL lists (KIE Veo record-info)."""

    name = "veo_record_info"

    def parse(self, body: Any) -> PollResult | None:
        data = _data(body)
        if data is None or "successFlag" not in data:
            return None
        flag = as_int(data.get("successFlag"))
        if flag == 1:
            # resultUrls is the video (providers.md §1.3, §10.1); fullResultUrls is an extend
            # task's stitched video, which the adapter moves first for an extend job (§1.8)
            urls = first_urls(as_dict(data.get("response")), "resultUrls", "fullResultUrls")
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
        if data is None or "state" not in data or "taskId" not in data or "videoInfo" in data:
            return None
        raw = data.get("state")
        state = raw.strip().lower() if isinstance(raw, str) else ""
        if state == "success":
            urls = http_urls(json_object(data.get("resultJson")).get("resultUrls"))
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


class RunwayRecordNormalizer(Normalizer):
    """``data.state`` wait/queueing/generating/success/fail with ``data.videoInfo.videoUrl``
    (KIE Runway record-detail, providers.md §3.1); ``expireFlag`` 1 means the video is gone."""

    name = "kie_runway_record"
    QUEUED: ClassVar[frozenset[str]] = frozenset({"wait", "queueing"})
    KNOWN: ClassVar[frozenset[str]] = QUEUED | {"generating", "success", "fail"}

    def __init__(self, by_state: bool = False) -> None:
        # First in Runway's own chain, a record is known by its states too (one still
        # waiting has no videoInfo yet); elsewhere only by its own fields, so that a legacy
        # ``{"state", "videoUrl"}`` shape still reaches the parsers after it.
        self.by_state = by_state

    def parse(self, body: Any) -> PollResult | None:
        data = _data(body)
        if data is None or "state" not in data:
            return None
        raw = data.get("state")
        state = raw.strip().lower() if isinstance(raw, str) else ""
        if not ("videoInfo" in data or "generateParam" in data
                or (self.by_state and state in self.KNOWN)):
            return None
        if state == "success":
            if as_int(data.get("expireFlag")) == 1:  # §10.1: expireFlag=1 means gone
                return self.result(PollState.FAILED, error_code=ErrorCode.OUTPUT_MISSING,
                                   provider_message="the video expired at KIE (expireFlag=1)")
            urls = first_urls(as_dict(data.get("videoInfo")), "videoUrl", "video_url")
            return self.result(PollState.SUCCEEDED, output_urls=urls, progress=100)
        if state == "fail":
            message = as_text(data.get("failMsg"))
            code = as_int(data.get("failCode"))
            return self.result(PollState.FAILED, error_code=classify_failure(code, message),
                               provider_message=f"{code or ''} {message}".strip())
        if state not in self.KNOWN:
            warn_unknown(self.name, "state", raw)
        return self.result(PollState.QUEUED if state in self.QUEUED else PollState.RUNNING)


class VeoCallbackNormalizer(Normalizer):
    """Callback shape: ``code`` + ``data.info.resultUrls`` (array or JSON-array string)."""

    name = "veo_callback"

    def parse(self, body: Any) -> PollResult | None:
        data = _data(body)
        if data is None or not isinstance(data.get("info"), dict):
            return None
        urls = first_urls(data["info"], "fullResultUrls", "resultUrls")
        return self.result(PollState.SUCCEEDED, output_urls=urls)


class FlatStatusNormalizer(Normalizer):
    """Legacy ``{"status": "completed", "videoUrl": …}`` (the original workflow)."""

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
            return self.result(PollState.SUCCEEDED, output_urls=http_urls(url))
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
        urls = http_urls(data.get("video_url")) if data is not None else []
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
                  json_object(data.get("resultJson"))]
        for place in places:
            if urls := first_urls(place, *self.FIELDS):
                return self.result(PollState.SUCCEEDED, output_urls=urls)
        return None


VEO_RECORD, MARKET_RECORD, RUNWAY_RECORD = (
    VeoRecordInfoNormalizer(), MarketRecordNormalizer(), RunwayRecordNormalizer())
RECORD_PARSERS: tuple[Normalizer, ...] = (VEO_RECORD, MARKET_RECORD, RUNWAY_RECORD)
_RECORD_TYPES = (VeoRecordInfoNormalizer, MarketRecordNormalizer, RunwayRecordNormalizer)
SHARED: tuple[Normalizer, ...] = (
    VeoCallbackNormalizer(),
    FlatStatusNormalizer(),
    NestedJobNormalizer(),
    DataVideoUrlNormalizer(),
    AlternateUrlFieldsNormalizer(),
    *LAST_RESORT,
)


# Each family's chain starts with its own endpoint's parser (providers.md: one parser per
# endpoint family), then the other record shapes and the legacy ones.
CHAIN: tuple[Normalizer, ...] = (*RECORD_PARSERS, *SHARED)  # KIE Veo's
MARKET_CHAIN: tuple[Normalizer, ...] = (MARKET_RECORD, VEO_RECORD, RUNWAY_RECORD, *SHARED)
RUNWAY_CHAIN: tuple[Normalizer, ...] = (
    RunwayRecordNormalizer(by_state=True), VEO_RECORD, MARKET_RECORD, *SHARED)


def judge(resp: ProviderResponse, chain: tuple[Normalizer, ...] = CHAIN) -> PollResult:
    """One KIE status answer → ``PollResult``; faults raise what the poller should do."""
    code, message, _ = envelope(resp.body)
    if resp.http_status != 200:
        raise error_for(resp.http_status, message, "status", resp.retry_after, sample_of(resp))
    if resp.body is None:
        raise TransientError("response is not JSON", resp.text_sample)
    if code is not None and code != 200:
        if code not in REQUEST_CODES and (failed := _failed_record(resp.body, chain)) is not None:
            return failed
        if code == 422 and RESULT_BLANK.search(message):
            return PollResult(state=PollState.SUCCEEDED, parser="record_result_blank")
        raise error_for(code, message, "status", resp.retry_after, sample_of(resp))
    return run_chain(chain, resp.body, sample_of(resp))


def _failed_record(body: Any, chain: tuple[Normalizer, ...]) -> PollResult | None:
    """The verdict of a failed KIE task record inside a non-200 envelope, if there is one.

    Only the task-record shapes qualify: a generic ``{"code": 500, "status": "error"}`` looks
    like a legacy failure but is a fault of the call, not a verdict on the task.
    """
    for parser in (p for p in chain if isinstance(p, _RECORD_TYPES)):
        result = parser.parse(body)
        if result is not None:
            return result if result.state is PollState.FAILED else None
    return None
