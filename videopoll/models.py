"""The contracts at every boundary: HTTP bodies, provider results and the job record.

Request models use the caller's camelCase names (that is what n8n sends); the job record and
poll results use snake_case because only our own code reads them.
"""

from __future__ import annotations

import enum
import time
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, HttpUrl

PROMPT_MAX_CHARS = 4000
ID_MAX_CHARS = 200


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


class _Caller(BaseModel):
    """Fields every submission shares: who to tell, and what to echo back."""

    session_id: NonBlank = Field(alias="sessionId", min_length=1, max_length=ID_MAX_CHARS)
    chat_id: str | int | None = Field(default=None, alias="chatId")
    callback_url: HttpUrl | None = Field(default=None, alias="callbackUrl")
    metadata: dict[str, Any] = Field(default_factory=dict)


class PollVideoRequest(_Caller):
    """The n8n webhook body: poll a task somebody else already submitted."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    task_id: NonBlank = Field(alias="taskId", min_length=1, max_length=ID_MAX_CHARS)
    model: str = Field(min_length=1, max_length=100)
    attempt: int = Field(default=1, ge=1, le=10_000)


AspectRatio = Literal["16:9", "9:16", "1:1"]


class GenerateRequest(_Caller):
    """Ask us to submit a generation to the provider and then poll it."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    model: str = Field(min_length=1, max_length=100)
    prompt: NonBlank = Field(min_length=1, max_length=PROMPT_MAX_CHARS)
    aspect_ratio: AspectRatio = Field(default="16:9", alias="aspectRatio")
    duration_seconds: int | None = Field(default=None, ge=1, le=10, alias="durationSeconds")
    image_urls: list[HttpUrl] = Field(default_factory=list, alias="imageUrls", max_length=3)


class GenerationSpec(BaseModel):
    """What an adapter needs to submit a generation; stored on the job so a retry can resend."""

    model: str
    prompt: str
    aspect_ratio: str = "16:9"
    duration_seconds: int = 8
    image_urls: list[str] = Field(default_factory=list)


class DeliveryRecord(BaseModel):
    """What each delivery stage has done, so a re-run skips it (invariant 4)."""

    storage_key: str | None = None
    storage_url: str | None = None
    size_bytes: int | None = None
    notified_at: float | None = None
    notify_message_id: str | None = None
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
    spec: GenerationSpec | None = None
    idempotency_keys: list[str] = Field(default_factory=list)
    poll_token: int = 1
    attempts: int = 0
    max_attempts: int = 15
    transient_errors: int = 0
    rate_limited: int = 0
    missing_output_polls: int = 0
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
