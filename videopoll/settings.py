"""Typed configuration, read from the environment in one place.

Entry points (the app factory, the Celery app, the CLI) call ``load_settings()`` and pass the
result down; nothing else reads ``os.environ``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

if TYPE_CHECKING:
    from videopoll.providers.base import ProviderConfig


class Settings(BaseSettings):
    """Every knob of the service; defaults are the embedded offline stack of ``make run``."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    redis_url: str = "redis://127.0.0.1:6379/0"
    broker_url: str | None = None
    # Poll messages go straight onto a Redis broker's queue list (videopoll.poll_messages);
    # off, every message is published through Celery.
    direct_publish: bool = True
    key_prefix: str = "videopoll"

    poll_interval_seconds: float = Field(default=60.0, gt=0)
    poll_schedule: Annotated[list[float], NoDecode] = Field(default_factory=list)
    max_attempts: int = Field(default=15, ge=1)
    delayed_interval_seconds: float = Field(default=300.0, gt=0)
    job_deadline_seconds: float = Field(default=3 * 3600.0, gt=0)
    sweep_interval_seconds: float = Field(default=15.0, gt=0)
    sweep_grace_seconds: float = Field(default=60.0, ge=0)
    poll_lease_seconds: float = Field(default=120.0, gt=0)
    delivery_lease_seconds: float = Field(default=600.0, gt=0)
    max_missing_output_polls: int = Field(default=3, ge=1)
    # Provider rate limits default to each provider's documented budget; these override the
    # status (poll) and submit buckets for every account, e.g. for a smaller plan or in tests.
    rate_limit_per_second: float | None = Field(default=None, gt=0)
    rate_limit_burst: int | None = Field(default=None, ge=1)
    submit_rate_limit_per_second: float | None = Field(default=None, gt=0)
    submit_rate_limit_burst: int | None = Field(default=None, ge=1)
    # A status endpoint that does not know a task gets this long (the task may be brand new)
    # before the job fails task_not_found.
    task_not_found_grace_seconds: float = Field(default=120.0, ge=0)
    # Delivery's own bound (invariant 10): re-deliveries by the sweeper, and total time.
    max_delivery_runs: int = Field(default=5, ge=1)
    delivery_budget_seconds: float = Field(default=3600.0, gt=0)
    result_retention_seconds: int = Field(default=7 * 86400, ge=60)

    # Each provider family reads its own <PREFIX>_BASE_URL, <PREFIX>_API_KEY, … (KIE_API_KEY,
    # OPENAI_API_KEY, …) through its ``config_class``; these override them by config name,
    # e.g. ``providers={"kie": {"base_url": …}}`` (tests, the demo).
    providers: dict[str, dict[str, Any]] = Field(default_factory=dict)
    provider_timeout_seconds: float = Field(default=15.0, gt=0)
    public_base_url: str | None = None
    # Push callbacks (providers.md §1.4-1.5): with PUBLIC_BASE_URL set, submissions ask the
    # provider to call /callbacks/<family>; the callback wakes the poller at once, and polling
    # relaxes to this safety-net schedule. Providers that sign callbacks are verified with
    # their own key (KIE_WEBHOOK_HMAC_KEY, REPLICATE_WEBHOOK_SECRET, …); for those that do not,
    # CALLBACK_URL_SECRET puts a token in the callback URL that the callback must bring back.
    callback_poll_schedule: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: [30.0, 60.0, 120.0])
    callback_max_age_seconds: float = Field(default=300.0, gt=0)
    callback_url_secret: SecretStr | None = None

    storage_url: str = "file://./var/videos"
    s3_endpoint_url: str | None = None
    # Links for people: a public base (CDN, public bucket) when set, else a presigned GET
    # made at read time (S3) or the API's /videos/<key> (file storage).
    public_video_base_url: str | None = None
    presign_seconds: int = Field(default=3600, ge=60, le=7 * 86400)
    max_download_bytes: int = Field(default=500 * 1024 * 1024, gt=0)
    download_timeout_seconds: float = Field(default=60.0, gt=0)
    allow_private_urls: bool = False

    # delivery: who is told, and how (README "Delivery")
    notifiers: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["console"])
    telegram_bot_token: SecretStr | None = None
    telegram_api_url: str = "https://api.telegram.org"
    telegram_webhook_secret: SecretStr | None = None
    progress_messages: bool = False  # default for requests that do not say progressMessages
    # The Bot API takes uploads up to 50 MB from bots; a larger video is sent as a link.
    telegram_upload_max_bytes: int = Field(default=50 * 1024 * 1024, gt=0)
    callback_secret: SecretStr | None = None  # whsec_… : Standard Webhooks signatures
    callback_timeout_seconds: float = Field(default=10.0, gt=0)
    slack_webhook_url: SecretStr | None = None
    discord_webhook_url: SecretStr | None = None
    session_key_template: str = "session:{sessionId}"
    session_redis_url: str | None = None  # default: the job store's Redis
    # Cost per video by model (your plan's price, in your currency), for analytics, as JSON:
    # MODEL_PRICES='{"veo3": 2.0, "veo3_fast": 0.4}'. Unlisted models record no cost.
    model_prices: dict[str, float] = Field(default_factory=dict)

    api_token: SecretStr | None = None
    # Status pages (GET /jobs/<id>/view) open with a signed, expiring link; the key is
    # VIEW_SECRET, else API_TOKEN. Without either, pages open on loopback only.
    view_secret: SecretStr | None = None
    view_link_seconds: int = Field(default=86400, ge=60, le=30 * 86400)
    # Each Redis call (and broker publish) the API makes gives up after this long, so an outage
    # is a prompt 503 with Retry-After, not a caller left hanging.
    api_redis_timeout_seconds: float = Field(default=1.5, gt=0)
    max_body_bytes: int = Field(default=64 * 1024, gt=0)

    # metrics (README "Metrics"): the folder gunicorn's workers share their values in (read
    # by prometheus_client itself too); the port each Celery worker serves its own on
    prometheus_multiproc_dir: str | None = None
    worker_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    worker_metrics_host: str = "127.0.0.1"

    # delivery: webhooks, session, media
    # Callbacks are signed whenever CALLBACK_SECRET is set (space-separated secrets sign once
    # each, for rotation); with this on, a callback is refused rather than sent unsigned.
    callback_require_signature: bool = False
    # ffprobe reads the stored video (a file, or a presigned link); a stalled read ends here.
    probe_timeout_seconds: float = Field(default=30.0, gt=0)

    @field_validator("notifiers", mode="before")
    @classmethod
    def _split_notifiers(cls, value: object) -> object:
        if isinstance(value, str):
            return [p.strip().lower() for p in value.split(",") if p.strip()]
        return value

    @field_validator("poll_schedule", "callback_poll_schedule", mode="before")
    @classmethod
    def _split_schedule(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [p.strip() for p in value.split(",") if p.strip()]
            return [float(p) for p in parts]
        if isinstance(value, (int, float)):
            return [float(value)]
        return value

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if any(step <= 0 for step in self.poll_schedule):
            raise ValueError("POLL_SCHEDULE entries must be positive seconds")
        if any(step <= 0 for step in self.callback_poll_schedule):
            raise ValueError("CALLBACK_POLL_SCHEDULE entries must be positive seconds")
        return self

    @property
    def effective_broker_url(self) -> str:
        return self.broker_url or self.redis_url

    def countdown_for(self, attempt: int, push_callbacks: bool = False) -> float:
        """Seconds to wait before poll number ``attempt`` (1-based).

        A job whose provider will call back is polled only as a safety net.
        """
        schedule = self.callback_poll_schedule if push_callbacks else self.poll_schedule
        if schedule:
            return schedule[min(attempt - 1, len(schedule) - 1)]
        return self.poll_interval_seconds

    def provider_config(self, name: str, cls: type[ProviderConfig]) -> ProviderConfig:
        """One family's settings: ``<NAME>_*`` from the environment under ``providers[name]``."""
        return cls(_env_prefix=f"{name.upper()}_", **self.providers.get(name, {}))

    def secret(self, name: str) -> str | None:
        value = getattr(self, name)
        return value.get_secret_value() if isinstance(value, SecretStr) else None


@lru_cache(maxsize=1)
def load_settings() -> Settings:
    """The process-wide settings, read once at an entry point."""
    return Settings()
