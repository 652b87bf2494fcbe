"""Table-driven: every recorded provider shape → the PollResult (or fault) it must give."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from videopoll.errors import PermanentError, RateLimitedError, TransientError
from videopoll.models import ErrorCode, PollState, ProviderResponse
from videopoll.normalizers import normalize

FIXTURES = Path(__file__).parent / "fixtures" / "kie"


def body(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def ok(name: str) -> ProviderResponse:
    return ProviderResponse(http_status=200, body=body(name), text_sample="")


S, R, Q, F = PollState.SUCCEEDED, PollState.RUNNING, PollState.QUEUED, PollState.FAILED


@pytest.mark.parametrize(
    ("fixture", "state", "url", "code", "parser"),
    [
        ("veo_success", S, "http://example.com/video1.mp4", None, "veo_record_info"),
        ("veo_generating", R, None, None, "veo_record_info"),
        ("veo_moderation", F, None, ErrorCode.MODERATION_REJECTED, "veo_record_info"),
        ("veo_upstream_failed", F, None, ErrorCode.UNKNOWN_PROVIDER_ERROR, "veo_record_info"),
        ("veo_timeout", F, None, ErrorCode.PROVIDER_TIMEOUT, "veo_record_info"),
        ("veo_image_fetch_failed", F, None, ErrorCode.ASSET_FETCH_FAILED, "veo_record_info"),
        ("veo_english_only", F, None, ErrorCode.VALIDATION_FAILED, "veo_record_info"),
        ("veo_success_no_url", S, None, None, "veo_record_info"),
        ("veo_success_origin_only", S, "http://example.com/original_video1.mp4", None,
         "alternate_url_fields"),
        ("veo_callback_success", S, "http://example.com/video1.mp4", None, "veo_callback"),
        ("veo_callback_string_urls", S, "http://example.com/video1.mp4", None, "veo_callback"),
        ("market_generating", R, None, None, "market_record"),
        ("market_waiting", Q, None, None, "market_record"),
        ("market_success", S, "https://example.com/generated-content.mp4", None,
         "market_record"),
        ("market_moderation", F, None, ErrorCode.MODERATION_REJECTED, "market_record"),
        ("market_content_policy", F, None, ErrorCode.MODERATION_REJECTED, "market_record"),
        ("market_media_unavailable", F, None, ErrorCode.ASSET_FETCH_FAILED, "market_record"),
        ("market_success_no_url", S, None, None, "market_record"),
        ("market_watermark_only", S, "https://example.com/wm.mp4", None,
         "alternate_url_fields"),
        ("market_callback_success", S, "https://example.com/video.mp4", None, "market_record"),
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
    failed = normalize(ok("market_moderation"))
    assert failed.provider_message == "422 Invalid prompt: prompt contains prohibited content"


@pytest.mark.parametrize(
    ("fixture", "raises", "code"),
    [
        ("envelope_401", PermanentError, ErrorCode.PROVIDER_AUTH_FAILED),
        ("envelope_402", PermanentError, ErrorCode.INSUFFICIENT_CREDITS),
        ("envelope_429", RateLimitedError, None),
        ("envelope_455", RateLimitedError, None),
        ("envelope_422", TransientError, None),
        ("envelope_451", PermanentError, ErrorCode.ASSET_FETCH_FAILED),
        ("envelope_500", TransientError, None),
        ("market_internal_error", TransientError, None),
        ("veo_callback_failure", PermanentError, ErrorCode.MODERATION_REJECTED),
    ],
)
def test_envelope_codes(fixture: str, raises: type[Exception], code: ErrorCode | None) -> None:
    with pytest.raises(raises) as info:
        normalize(ok(fixture))
    if code is not None:
        assert isinstance(info.value, PermanentError) and info.value.code == code


@pytest.mark.parametrize(
    ("status", "body", "text", "raises"),
    [
        (500, {"code": 500, "msg": "Server Error"}, "", TransientError),
        (502, None, "<html><body>Bad Gateway</body></html>", TransientError),
        (200, None, "not json{{", TransientError),
        (200, None, "", TransientError),
        (401, None, "", PermanentError),
        (404, None, "", TransientError),  # may not exist yet right after submit
        (200, {"unexpected": "shape"}, "", TransientError),
        (200, [1, 2, 3], "", TransientError),
    ],
)
def test_http_level_faults(status: int, body: Any, text: str, raises: type[Exception]) -> None:
    with pytest.raises(raises):
        normalize(ProviderResponse(http_status=status, body=body, text_sample=text))


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
