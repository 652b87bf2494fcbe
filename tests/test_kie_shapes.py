"""Table-driven: every recorded KIE shape → the PollResult (or fault) it must give."""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path
from typing import Any

import pytest

from videopoll.errors import (
    PermanentError,
    RateLimitedError,
    TaskNotFoundError,
    TransientError,
    VideopollError,
)
from videopoll.models import ErrorCode, PollResult, PollState, ProviderResponse
from videopoll.normalizers import PARSER_BUG, guarded
from videopoll.providers.kie.shapes import judge

FIXTURES = Path(__file__).parent / "fixtures" / "kie"


def normalize(resp: ProviderResponse) -> PollResult:
    """What every KIE family's ``normalize`` does."""
    return guarded(resp, judge)


def body(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def ok(name: str) -> ProviderResponse:
    return ProviderResponse(http_status=200, body=body(name), text_sample="")


S, R, Q, F = PollState.SUCCEEDED, PollState.RUNNING, PollState.QUEUED, PollState.FAILED


@pytest.mark.parametrize(
    ("fixture", "state", "url", "code", "parser"),
    [
        # The documented example carries fullResultUrls too; resultUrls is the video (§1.3).
        # An extend job's adapter moves the stitched video first (test_kie_adapters).
        ("veo_success", S, "http://example.com/video1.mp4", None, "veo_record_info"),
        ("veo_extend_success", S, "http://example.com/segment.mp4", None, "veo_record_info"),
        ("veo_extend_full_empty", S, "http://example.com/video1.mp4", None, "veo_record_info"),
        ("veo_generating", R, None, None, "veo_record_info"),
        ("veo_moderation", F, None, ErrorCode.MODERATION_REJECTED, "veo_record_info"),
        ("veo_upstream_failed", F, None, ErrorCode.UNKNOWN_PROVIDER_ERROR, "veo_record_info"),
        ("veo_generation_failed_flag3", F, None, ErrorCode.UNKNOWN_PROVIDER_ERROR,
         "veo_record_info"),
        ("veo_timeout", F, None, ErrorCode.PROVIDER_TIMEOUT, "veo_record_info"),
        ("veo_internal_error", F, None, ErrorCode.PROVIDER_TIMEOUT, "veo_record_info"),
        ("veo_image_fetch_failed", F, None, ErrorCode.ASSET_FETCH_FAILED, "veo_record_info"),
        ("veo_english_only", F, None, ErrorCode.VALIDATION_FAILED, "veo_record_info"),
        ("veo_english_only_string_code", F, None, ErrorCode.VALIDATION_FAILED,
         "veo_record_info"),
        ("veo_success_no_url", S, None, None, "veo_record_info"),
        ("veo_success_origin_only", S, "http://example.com/original_video1.mp4", None,
         "alternate_url_fields"),
        ("veo_callback_success", S, "http://example.com/video1.mp4", None, "veo_callback"),
        ("veo_callback_string_urls", S, "http://example.com/video1.mp4", None, "veo_callback"),
        ("market_generating", R, None, None, "market_record"),
        ("market_progress_float", R, None, None, "market_record"),
        ("market_waiting", Q, None, None, "market_record"),
        ("market_queuing", Q, None, None, "market_record"),
        ("market_success", S, "https://example.com/generated-content.mp4", None,
         "market_record"),
        ("market_result_object", S, "https://example.com/object-form.mp4", None,
         "market_record"),
        ("market_return_last_frame", S, "https://example.com/seedance.mp4", None,
         "market_record"),
        ("market_moderation", F, None, ErrorCode.MODERATION_REJECTED, "market_record"),
        ("market_content_policy", F, None, ErrorCode.MODERATION_REJECTED, "market_record"),
        ("market_media_unavailable", F, None, ErrorCode.ASSET_FETCH_FAILED, "market_record"),
        ("market_fail_internal", F, None, ErrorCode.PROVIDER_TIMEOUT, "market_record"),
        # A callback envelope (code 501) around a failed record: the record is more specific.
        ("market_internal_error", F, None, ErrorCode.PROVIDER_TIMEOUT, "market_record"),
        ("market_success_no_url", S, None, None, "market_record"),
        ("market_watermark_only", S, "https://example.com/wm.mp4", None,
         "alternate_url_fields"),
        ("market_callback_success", S, "https://example.com/video.mp4", None, "market_record"),
        # record-info 422 "result data is blank": done, nothing to deliver; the poller's
        # missing-output budget turns repeats into output_missing.
        ("record_result_blank", S, None, None, "record_result_blank"),
        ("legacy_flat_status", S, "https://cdn.example.com/legacy.mp4", None, "flat_status"),
        ("legacy_flat_processing", R, None, None, "flat_status"),
        ("legacy_nested_job", S, "https://cdn.example.com/nested.mp4", None, "nested_job"),
        ("legacy_data_video_url", S, "https://cdn.example.com/data.mp4", None, "data_video_url"),
    ],
)
def test_recorded_shapes(
    fixture: str, state: PollState, url: str | None, code: ErrorCode | None, parser: str
) -> None:
    result = normalize(ok(fixture))
    assert (result.state, result.error_code, result.parser) == (state, code, parser)
    assert result.output_urls[:1] == ([url] if url else [])


def test_market_progress_and_raw_message_are_kept() -> None:
    assert normalize(ok("market_generating")).progress == 45
    assert normalize(ok("market_progress_float")).progress == 46  # 45.5 rounds half up
    failed = normalize(ok("market_moderation"))
    assert failed.provider_message == "422 Invalid prompt: prompt contains prohibited content"


@pytest.mark.parametrize(
    ("fixture", "raises", "code"),
    [
        ("envelope_401", PermanentError, ErrorCode.PROVIDER_AUTH_FAILED),
        ("envelope_402", PermanentError, ErrorCode.INSUFFICIENT_CREDITS),
        ("envelope_429", RateLimitedError, None),
        ("envelope_455", RateLimitedError, None),
        ("envelope_422", TaskNotFoundError, None),  # "record is null."
        ("record_info_null", TaskNotFoundError, None),
        ("record_not_found", TaskNotFoundError, None),
        ("record_expired", PermanentError, ErrorCode.TASK_NOT_FOUND),
        ("envelope_451", PermanentError, ErrorCode.ASSET_FETCH_FAILED),
        ("envelope_408", TransientError, None),
        ("envelope_500", TransientError, None),
        ("envelope_501", PermanentError, ErrorCode.UNKNOWN_PROVIDER_ERROR),
        ("envelope_505", PermanentError, ErrorCode.UNKNOWN_PROVIDER_ERROR),
        ("veo_callback_failure", PermanentError, ErrorCode.MODERATION_REJECTED),
    ],
)
def test_envelope_codes(fixture: str, raises: type[Exception], code: ErrorCode | None) -> None:
    with pytest.raises(raises) as info:
        normalize(ok(fixture))
    assert type(info.value) is raises
    if code is not None:
        assert isinstance(info.value, PermanentError) and info.value.code == code


# Status stage: every code of providers.md §1.2/§1.3/§2.2, as the body ``code`` under HTTP 200
# and as the HTTP status itself (with the same envelope). ``None`` = a PollResult, no fault.
DOC_TEXT = {
    200: "success", 400: "taskId parameter is required", 401: "Unauthorized",
    402: "Credits insufficient", 404: "Task not found",
    408: "Upstream is currently experiencing service issues. No result has been returned for "
         "over 10 minutes.",
    422: "record is null.", 429: "Rate limit exceeded", 451: "Failed to fetch the image.",
    455: "Service unavailable", 500: "Server Error",
    501: "Failed - Video generation task failed", 505: "The feature is disabled",
}
STATUS_TABLE: list[tuple[int, type[Exception] | None, ErrorCode | None]] = [
    (200, None, None),
    (400, PermanentError, ErrorCode.VALIDATION_FAILED),
    (401, PermanentError, ErrorCode.PROVIDER_AUTH_FAILED),
    (402, PermanentError, ErrorCode.INSUFFICIENT_CREDITS),
    (404, TaskNotFoundError, None),
    (408, TransientError, None),
    (422, TaskNotFoundError, None),
    (429, RateLimitedError, None),
    (451, PermanentError, ErrorCode.ASSET_FETCH_FAILED),
    (455, RateLimitedError, None),
    (500, TransientError, None),
    (501, PermanentError, ErrorCode.UNKNOWN_PROVIDER_ERROR),
    (505, PermanentError, ErrorCode.UNKNOWN_PROVIDER_ERROR),
]


@pytest.mark.parametrize("where", ["body", "http"])
@pytest.mark.parametrize(("code", "raises", "error_code"), STATUS_TABLE)
def test_every_documented_code_on_status(
    where: str, code: int, raises: type[Exception] | None, error_code: ErrorCode | None
) -> None:
    data = body("veo_generating")["data"] if code == 200 else None
    payload = {"code": code, "msg": DOC_TEXT[code], "data": data}
    resp = ProviderResponse(http_status=code if where == "http" else 200, body=payload)
    if raises is None:
        assert normalize(resp).state is PollState.RUNNING
        return
    with pytest.raises(raises) as info:
        normalize(resp)
    assert type(info.value) is raises
    if error_code is not None:
        assert isinstance(info.value, PermanentError) and info.value.code == error_code


# record-info 422 texts (providers.md §1.3, §2.2) and how each is read.
RECORD_422 = [
    ("record is null.", TaskNotFoundError, None),  # not created yet, or gone: grace then fail
    ("recordInfo is null", TaskNotFoundError, None),
    ("Temporarily supports records within 14 days.", PermanentError,
     ErrorCode.TASK_NOT_FOUND),
    ("record status is not success.", TransientError, None),  # not ready: poll on, deadline
    ("record result data is blank.", PollState.SUCCEEDED, None),  # done without output
    ("record result data not exist.", PollState.SUCCEEDED, None),
    ("record result data is empty.", PollState.SUCCEEDED, None),
    ("Your request was rejected by Flow(unsafe content). You may consider using our other "
     "fallback channels", PermanentError, ErrorCode.MODERATION_REJECTED),
    ("something nobody documented", TransientError, None),
]


@pytest.mark.parametrize(("text", "outcome", "error_code"), RECORD_422)
def test_record_info_422_texts(
    text: str, outcome: type[Exception] | PollState, error_code: ErrorCode | None
) -> None:
    resp = ProviderResponse(http_status=200, body={"code": 422, "msg": text, "data": None})
    if isinstance(outcome, PollState):
        result = normalize(resp)
        assert (result.state, result.output_urls) == (outcome, [])
        return
    with pytest.raises(outcome) as info:
        normalize(resp)
    assert type(info.value) is outcome
    if error_code is not None:
        assert isinstance(info.value, PermanentError) and info.value.code == error_code
        assert info.value.provider_message  # the log says why


@pytest.mark.parametrize(
    ("status", "body", "text", "raises"),
    [
        (500, {"code": 500, "msg": "Server Error"}, "", TransientError),
        (502, None, "<html><body>Bad Gateway</body></html>", TransientError),
        (200, None, "not json{{", TransientError),
        (200, None, "", TransientError),
        (401, None, "", PermanentError),
        (404, None, "", TaskNotFoundError),  # may not exist yet right after submit
        (200, {"unexpected": "shape"}, "", TransientError),
        (200, [1, 2, 3], "", TransientError),
    ],
)
def test_http_level_faults(status: int, body: Any, text: str, raises: type[Exception]) -> None:
    with pytest.raises(raises) as info:
        normalize(ProviderResponse(http_status=status, body=body, text_sample=text))
    assert type(info.value) is raises


def test_only_a_task_record_overrules_an_error_envelope() -> None:
    """A generic error body that looks like a legacy failure is still the envelope's fault."""
    generic = {"code": 500, "status": "error", "message": "Internal"}
    with pytest.raises(TransientError):
        normalize(ProviderResponse(http_status=200, body=generic))


def test_429_carries_retry_after() -> None:
    with pytest.raises(RateLimitedError) as info:
        normalize(ProviderResponse(http_status=429, body=body("envelope_429"), retry_after=7))
    assert info.value.retry_after == 7


def test_unparseable_keeps_a_sample_for_the_log() -> None:
    with pytest.raises(TransientError) as info:
        normalize(ProviderResponse(http_status=200, body=None, text_sample="<html>oops"))
    assert info.value.sample == "<html>oops"


def test_unknown_state_is_running_not_failure() -> None:
    data = {"code": 200, "data": {"taskId": "t", "state": "rendering-in-space"}}
    assert normalize(ProviderResponse(http_status=200, body=data)).state is PollState.RUNNING


def _veo_flag(flag: Any) -> ProviderResponse:
    return ProviderResponse(http_status=200,
                            body={"code": 200, "data": {"taskId": "t", "successFlag": flag}})


def _market_state(state: Any) -> ProviderResponse:
    return ProviderResponse(http_status=200,
                            body={"code": 200, "data": {"taskId": "t", "state": state}})


@pytest.mark.parametrize("make", [_veo_flag, _market_state], ids=["veo", "market"])
def test_unknown_state_warns_once_per_value(
    make: Any, caplog: pytest.LogCaptureFixture
) -> None:
    odd, other = f"odd-{uuid.uuid4().hex}", f"other-{uuid.uuid4().hex}"
    with caplog.at_level(logging.WARNING, logger="videopoll.normalizers"):
        states = [normalize(make(value)).state for value in (odd, odd, odd, other)]
    assert states == [R, R, R, R]
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 2
    assert odd in warned[0] and other in warned[1]


@pytest.mark.parametrize("flag", [0, "0", 0.0])
def test_veo_flag_numbers_as_strings_are_known(
    flag: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="videopoll.normalizers"):
        assert normalize(_veo_flag(flag)).state is R
    assert not caplog.records


# --- no provider answer may crash a poll ------------------------------------------------------

ODD_VALUES: list[Any] = [
    None, True, False, 0, -1, 1.5, 45.5, 10**30, float("nan"), float("inf"), "", " ", "1", "2",
    "45.5", "null", "[", "{not json", "[1, 2]", '{"resultUrls": {"a": 1}}', '"a string"',
    "[" * 5000 + "]" * 5000, [], [None], [[["http://x/a.mp4"]]], ["http://x/a.mp4", 3, None],
    {}, {"resultUrls": 5}, {"a": {"b": [1, {"c": None}]}}, "http://x/a.mp4",
]
# Every field some parser or the envelope reads, by where it sits.
TOP_FIELDS = ["code", "msg", "message", "data", "status", "videoUrl", "error", "job"]
DATA_FIELDS = ["taskId", "successFlag", "errorCode", "errorMessage", "response", "state",
               "resultJson", "failCode", "failMsg", "progress", "info", "video_url"]
INNER_FIELDS = {"response": ["resultUrls", "fullResultUrls", "originUrls"],
                "info": ["resultUrls", "fullResultUrls", "originUrls"],
                "job": ["status", "result", "error"]}


def _variants() -> list[tuple[str, int, Any]]:
    bases = [body(p.stem) for p in sorted(FIXTURES.glob("*.json"))]
    out: list[tuple[str, int, Any]] = [("whole", 200, v) for v in ODD_VALUES]
    for i, base in enumerate(bases):
        for field in TOP_FIELDS:
            out += [(f"{i}.{field}", 200, {**base, field: v}) for v in ODD_VALUES]
        data = base.get("data") if isinstance(base.get("data"), dict) else {}
        for field in DATA_FIELDS:
            out += [(f"{i}.data.{field}", 200, {**base, "data": {**data, field: v}})
                    for v in ODD_VALUES]
        for parent, fields in INNER_FIELDS.items():
            inner = data.get(parent) if isinstance(data.get(parent), dict) else {}
            for field in fields:
                out += [(f"{i}.data.{parent}.{field}", 200,
                         {**base, "data": {**data, parent: {**inner, field: v}}})
                        for v in ODD_VALUES]
        out += [(f"{i}.http{s}", s, base) for s in (0, 201, 204, 302, 404, 410, 503, 999)]
    return out


def test_no_provider_answer_crashes_a_poll() -> None:
    """Only a PollResult or one of our own errors, and never by way of the parser-bug net."""
    variants = _variants()
    assert len(variants) > 10_000
    crashes: list[str] = []
    for name, status, payload in variants:
        try:
            outcome = normalize(ProviderResponse(http_status=status, body=payload,
                                                 text_sample="x"))
        except VideopollError as exc:
            if isinstance(exc, TransientError) and exc.reason.startswith(PARSER_BUG):
                crashes.append(f"{name}: {exc.reason}")
        except Exception as exc:  # the point of the test: anything else is a crash
            crashes.append(f"{name}: {type(exc).__name__}: {exc}"[:300])
        else:
            if not isinstance(outcome, PollResult):
                crashes.append(f"{name}: returned {outcome!r}"[:300])
    assert crashes == [], f"{len(crashes)} crashes, first: {crashes[:5]}"


def test_a_parser_bug_is_a_transient_error_with_a_sample(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The net behind the chain: a bug of ours still ends as a typed, logged fault."""
    from videopoll.providers.kie import shapes

    def boom(self: Any, body: Any) -> None:
        raise KeyError("bug")

    monkeypatch.setattr(shapes.VeoRecordInfoNormalizer, "parse", boom)
    with caplog.at_level(logging.ERROR, logger="videopoll.normalizers"), \
            pytest.raises(TransientError) as info:
        normalize(ProviderResponse(http_status=200, body=body("veo_success"), text_sample="s"))
    assert info.value.reason.startswith(PARSER_BUG)
    assert info.value.sample == "s"
    assert caplog.records
