"""The contracts at every boundary: HTTP bodies, provider results and the job record.

Request models use the caller's camelCase names (that is what n8n sends); the job record and
poll results use snake_case because only our own code reads them.
"""

from __future__ import annotations

import enum
import json
import time
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, HttpUrl

from videopoll.media import MediaInfo

PROMPT_MAX_CHARS = 4000
ID_MAX_CHARS = 200
# What providers issue as task ids (``veo_task_abc``, ``task_sora-2-pro_1765…``, Google's
# ``models/veo-3.1-generate-preview/operations/abc``): no control character, no space, no
# ``..`` segment and no leading slash (adapters quote ids that sit in one path segment).
TASK_ID_PATTERN = r"^[A-Za-z0-9._:-][A-Za-z0-9._:/-]{0,199}$"


def _no_dot_segments(value: str) -> str:
    if ".." in value.split("/"):
        raise ValueError("must not contain a '..' path segment")
    return value
CHAT_ID_MAX_CHARS = 64
# The job record is read back on every poll and by every GET: metadata stays small and shallow
# enough that any JSON parser (ours has a recursion limit) reads it back.
METADATA_MAX_DEPTH = 10
METADATA_MAX_BYTES = 8192
METADATA_MAX_KEYS = 100


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    VALIDATING = "validating"
    RUNNING = "running"
    DELAYED = "delayed"
    DELIVERING = "delivering"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED})
# States in which a poll (or the submit turn) may run and commit its answer.
POLLABLE_STATUSES = frozenset(
    {JobStatus.QUEUED, JobStatus.VALIDATING, JobStatus.RUNNING, JobStatus.DELAYED}
)


class ErrorCode(enum.StrEnum):
    VALIDATION_FAILED = "validation_failed"
    MODERATION_REJECTED = "moderation_rejected"
    PROVIDER_TIMEOUT = "provider_timeout"
    PROVIDER_RATE_LIMITED = "provider_rate_limited"
    ASSET_FETCH_FAILED = "asset_fetch_failed"
    OUTPUT_MISSING = "output_missing"
    UNKNOWN_PROVIDER_ERROR = "unknown_provider_error"
    DELIVERY_FAILED = "delivery_failed"
    CANCELED = "canceled"
    INSUFFICIENT_CREDITS = "insufficient_credits"
    PROVIDER_AUTH_FAILED = "provider_auth_failed"
    TASK_NOT_FOUND = "task_not_found"
    SUBMIT_UNCONFIRMED = "submit_unconfirmed"


class PollState(enum.StrEnum):
    """What one provider status response says, before the job decides anything."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class PollResult(BaseModel):
    """One provider status response, normalized. The poller decides the job's fate from it."""

    state: PollState
    output_urls: list[str] = Field(default_factory=list)
    error_code: ErrorCode | None = None
    provider_message: str = ""
    progress: int | None = None
    parser: str = ""


class ProviderResponse(BaseModel):
    """A provider's raw HTTP answer, handed unjudged to the normalizer chain."""

    http_status: int
    body: Any = None
    text_sample: str = ""
    retry_after: float | None = None


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value.strip()


NonBlank = Annotated[str, AfterValidator(_not_blank)]


def _chat_id(value: object) -> object:
    """A Telegram chat id (a signed 64-bit integer) or a short handle such as ``@channel``."""
    if value is None:
        return value
    if isinstance(value, str) and value.strip():
        if len(value.strip()) > CHAT_ID_MAX_CHARS:
            raise ValueError(f"must be at most {CHAT_ID_MAX_CHARS} characters")
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        if not -(2**63) <= value < 2**63:
            raise ValueError("must be greater than or equal to -2**63 and less than 2**63")
        return value
    raise ValueError(f"must be an integer or a non-blank string of at most "
                     f"{CHAT_ID_MAX_CHARS} characters")


def _depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _keys(value: object) -> int:
    if isinstance(value, dict):
        return len(value) + sum(_keys(v) for v in value.values())
    if isinstance(value, list):
        return sum(_keys(v) for v in value)
    return 0


def _bounded_metadata(value: dict[str, Any]) -> dict[str, Any]:
    if _depth(value) > METADATA_MAX_DEPTH:
        raise ValueError(f"must not nest deeper than {METADATA_MAX_DEPTH} levels")
    if _keys(value) > METADATA_MAX_KEYS:
        raise ValueError(f"must not hold more than {METADATA_MAX_KEYS} keys")
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False)
               .encode("utf-8", "surrogatepass"))
    if size > METADATA_MAX_BYTES:
        raise ValueError(f"must be at most {METADATA_MAX_BYTES} bytes as JSON (got {size})")
    return value


ChatId = Annotated[str | int | None, BeforeValidator(_chat_id)]
Metadata = Annotated[dict[str, Any], AfterValidator(_bounded_metadata)]


class _Caller(BaseModel):
    """Fields every submission shares: who to tell, and what to echo back."""

    session_id: NonBlank = Field(alias="sessionId", min_length=1, max_length=ID_MAX_CHARS)
    chat_id: ChatId = Field(default=None, alias="chatId")
    callback_url: HttpUrl | None = Field(default=None, alias="callbackUrl")
    metadata: Metadata = Field(default_factory=dict)
    # One Telegram message edited in place while the job runs ("Generating… 3/15");
    # ``None`` follows the PROGRESS_MESSAGES setting.
    progress_messages: bool | None = Field(default=None, alias="progressMessages", strict=True)


class PollVideoRequest(_Caller):
    """The n8n webhook body: poll a task somebody else already submitted."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    task_id: Annotated[str, AfterValidator(_no_dot_segments)] = Field(
        alias="taskId", pattern=TASK_ID_PATTERN)
    model: str = Field(min_length=1, max_length=100)
    # strict: ``true`` is not attempt 1, and ``"2"`` is not a number n8n sends
    attempt: int = Field(default=1, ge=1, le=10_000, strict=True)


AspectRatio = Literal["16:9", "9:16", "1:1", "4:3", "3:4", "21:9"]


class GenerateRequest(_Caller):
    """Ask us to submit a generation to the provider and then poll it."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    model: str = Field(min_length=1, max_length=100)
    prompt: NonBlank = Field(min_length=1, max_length=PROMPT_MAX_CHARS)
    aspect_ratio: AspectRatio = Field(default="16:9", alias="aspectRatio")
    duration_seconds: int | None = Field(default=None, ge=1, le=60, alias="durationSeconds",
                                         strict=True)
    image_urls: list[HttpUrl] = Field(default_factory=list, alias="imageUrls", max_length=3)


class GenerationSpec(BaseModel):
    """What an adapter needs to submit a generation; stored on the job so a retry can resend."""

    model: str
    prompt: str
    aspect_ratio: str = "16:9"
    duration_seconds: int = 8
    image_urls: list[str] = Field(default_factory=list)
    # Extend an earlier generation (Veo's extend endpoint) instead of starting a new one.
    extend_task_id: str | None = None


class DeliveryRecord(BaseModel):
    """What the store and record stages did, so a re-run skips it (invariant 4). Each
    notification channel keeps its receipt beside the job (``JobStore.record_channel``)."""

    storage_key: str | None = None
    storage_url: str | None = None
    size_bytes: int | None = None
    media: MediaInfo | None = None
    recorded_at: float | None = None


class JobRecord(BaseModel):
    """The truth about one job. Celery messages only hint at work; this record decides."""

    job_id: str
    kind: Literal["poll", "generate"]
    status: JobStatus = JobStatus.QUEUED
    model: str
    family: str
    session_id: str
    chat_id: str | int | None = None
    callback_url: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    provider_task_id: str | None = None
    # Which rendition of the provider task to fetch ("1080p" for Veo's HD version).
    variant: str | None = None
    parent_job_id: str | None = None  # the job whose button started this one
    progress_messages: bool = False
    push_callbacks: bool = False  # the provider will call back: polling is a safety net
    spec: GenerationSpec | None = None
    idempotency_keys: list[str] = Field(default_factory=list)
    # Hash of the request body that created the job: a reused Idempotency-Key with another
    # body is a caller error (422), not a lookup.
    request_fingerprint: str | None = None
    poll_token: int = 1
    attempts: int = 0
    max_attempts: int = 15
    transient_errors: int = 0
    rate_limited: int = 0
    # Rate-limit answers since the provider last answered properly: a job that reaches its
    # deadline while this is non-zero ends provider_rate_limited, not provider_timeout.
    consecutive_rate_limited: int = 0
    missing_output_polls: int = 0
    not_found_polls: int = 0
    # Set just before a submit is sent, cleared when its outcome is known. Found set on a later
    # turn, it means a crash or timeout hid the outcome: never resubmit blindly (invariant 9).
    submit_started_at: float | None = None
    submits: int = 0
    delivery_started_at: float | None = None
    delivery_runs: int = 0  # sweeper re-runs that count against MAX_DELIVERY_RUNS
    delivery_tries_seen: int = 0  # store attempts begun, as of the sweeper's last look
    next_poll_at: float | None = None
    deadline_at: float
    created_at: float = Field(default_factory=time.time)
    updated_at: float = Field(default_factory=time.time)
    finished_at: float | None = None
    output_url: str | None = None
    error_code: ErrorCode | None = None
    provider_message: str = ""
    progress: int | None = None
    delivery: DeliveryRecord = Field(default_factory=DeliveryRecord)
    history: list[tuple[float, str]] = Field(default_factory=list)
