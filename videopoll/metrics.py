"""Prometheus metrics: every definition and every recording call, in one module.

The code paths call one line each (``metrics.job_submitted(job, created)``, ``with
metrics.provider_call(family, "status") as call``, ``@metrics.timed_stage("store")``). A metric
must never break what it measures: a recording that fails is logged once per process and
swallowed. Label values are bounded sets (registered models and families, statuses, error
codes, fixed outcome words), never job or task ids.

Where the numbers are read:

- the API's ``GET /metrics``: with ``PROMETHEUS_MULTIPROC_DIR`` set, every gunicorn worker
  writes its values to files there and a scrape adds them up (``gunicorn_conf`` clears the
  folder at start and marks dead workers); unset, this process's own registry.
- a Celery worker: ``WORKER_METRICS_PORT`` serves that worker's registry over HTTP (threads
  pool: one process; a prefork worker given its own ``PROMETHEUS_MULTIPROC_DIR`` adds up its
  children the same way).
- ``videopoll_jobs_in_flight`` is recorded nowhere: each API scrape counts it from the job
  store's sets (``JobStore.tallies``), so it is right whichever process moved the jobs.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from typing import Any, Literal, ParamSpec, TypeVar

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    start_http_server,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from videopoll.errors import (
    PermanentError,
    RateLimitedError,
    SubmitOutcomeUnknownError,
    TaskNotFoundError,
    TransientError,
)
from videopoll.models import ErrorCode, JobRecord, JobStatus, PollResult, PollState
from videopoll.providers import MODELS, PROVIDERS
from videopoll.store import JobStore

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")
Operation = Literal["status", "submit"]

PROVIDER_SECONDS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0)
GENERATION_SECONDS = (5, 10, 20, 30, 60, 120, 180, 300, 600, 900, 1800, 3600, 10800)
ATTEMPTS = (1, 2, 3, 5, 8, 10, 15, 20, 30, 50, 100)
STAGE_SECONDS = (0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
# What the sweeper took over, in words a dashboard can group by (its Next.reason strings)
SWEEP_REASONS = {"overdue": "poll_overdue", "delivery overdue": "delivery_overdue",
                 "delivery budget spent": "delivery_budget_spent",
                 "notify/record chain overdue": "outbox_overdue",
                 "notify/record chain lapsed": "outbox_lapsed"}
_CODES = frozenset(ErrorCode)


class _Metrics:
    """The metric objects, built on first use (nothing is registered at import)."""

    def __init__(self) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # no ``_created`` twins
        job = ["family", "model"]
        self.submitted = Counter("videopoll_jobs_submitted", "Submissions the API accepted; "
                                 "created=false is a repeat that returned the existing job",
                                 [*job, "kind", "created"])
        self.finished = Counter("videopoll_jobs_finished", "Jobs that ended, counted once when "
                                "the outcome is recorded", [*job, "status", "error_code"])
        self.generation = Histogram("videopoll_generation_seconds", "Submission to recorded "
                                    "success", job, buckets=GENERATION_SECONDS)
        self.attempts = Histogram("videopoll_job_attempts", "Provider polls a finished job "
                                  "used", [*job, "status"], buckets=ATTEMPTS)
        self.calls = {
            "status": Counter("videopoll_polls", "Status requests to a provider, by what the "
                              "answer said", ["family", "outcome"]),
            "submit": Counter("videopoll_submits", "Generation requests to a provider, by "
                              "outcome", ["family", "outcome"]),
        }
        self.seconds = {
            "status": Histogram("videopoll_poll_seconds", "Provider status round trip (the "
                                "request and reading its answer)", ["family"],
                                buckets=PROVIDER_SECONDS),
            "submit": Histogram("videopoll_submit_seconds", "Provider submit round trip",
                                ["family"], buckets=PROVIDER_SECONDS),
        }
        self.rate_limited = Counter("videopoll_rate_limited", "Provider requests held back: "
                                    "by the shared token bucket (local) or a provider 429 "
                                    "(provider)", ["family", "operation", "source"])
        self.stage = Histogram("videopoll_delivery_stage_seconds", "Time in one delivery stage "
                               "run, by how it ended", ["stage", "outcome"], buckets=STAGE_SECONDS)
        self.notifications = Counter("videopoll_notifications", "Messages per channel, by what "
                                     "the channel did", ["event", "channel", "status"])
        self.recoveries = Counter("videopoll_sweeper_recoveries", "Jobs the sweeper took over "
                                  "because their expected message never came",
                                  ["action", "reason"])


@lru_cache(maxsize=1)
def _metrics() -> _Metrics:
    return _Metrics()


_warned: set[str] = set()


def _quiet(record: Callable[P, None]) -> Callable[P, None]:
    """Run a recording; a failure is logged (once per function and process), never raised."""
    @functools.wraps(record)
    def safe(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            record(*args, **kwargs)
        except Exception:
            if record.__name__ not in _warned:
                _warned.add(record.__name__)
                log.warning("metric not recorded", extra={"metric": record.__name__},
                            exc_info=True)
    return safe


def _family(family: str) -> str:
    return family if family in PROVIDERS else "other"


def _job_labels(job: JobRecord) -> tuple[str, str]:
    model = job.model if f"{job.family}:{job.model}" in MODELS else "other"
    return _family(job.family), model


# recordings ------------------------------------------------------------------------------
@_quiet
def job_submitted(job: JobRecord, created: bool) -> None:
    _submitted(*_job_labels(job), job.kind, created).inc()


@lru_cache(maxsize=256)  # a handful of label sets; the lookup was a third of the recording
def _submitted(family: str, model: str, kind: str, created: bool) -> Any:
    return _metrics().submitted.labels(family, model, kind, str(created).lower())


@_quiet
def job_finished(job: JobRecord) -> None:
    """One finished job: its outcome, the polls it used and, for a video, how long it took."""
    m, labels = _metrics(), _job_labels(job)
    code = job.error_code.value if job.error_code else "none"
    m.finished.labels(*labels, job.status.value, code).inc()
    m.attempts.labels(*labels, job.status.value).observe(job.attempts)
    if job.status is JobStatus.SUCCEEDED:
        m.generation.labels(*labels).observe((job.finished_at or time.time()) - job.created_at)


@_quiet
def rate_limited(family: str, operation: Operation, source: Literal["local", "provider"]) -> None:
    _metrics().rate_limited.labels(_family(family), operation, source).inc()


@_quiet
def notification(event: str, channel: str, status: str) -> None:
    _metrics().notifications.labels(event, channel, status).inc()


@_quiet
def sweeper_recovered(action: str, reason: str) -> None:
    """What the sweeper handed back (``Next.action``, ``Next.reason``); a dropped turn is not."""
    if action == "stop":
        return
    word = SWEEP_REASONS.get(reason) or ("deadline" if reason in _CODES else "other")
    _metrics().recoveries.labels(action, word).inc()


class ProviderCall:
    """One provider request being timed; a status answer says what it was with ``answered``."""

    def __init__(self, operation: Operation) -> None:
        self.outcome = "accepted" if operation == "submit" else "answered"

    def answered(self, result: PollResult) -> PollResult:
        self.outcome = result.state.value
        if result.state is PollState.SUCCEEDED and not result.output_urls:
            self.outcome = "no_output"
        return result


@contextlib.contextmanager
def provider_call(family: str, operation: Operation) -> Iterator[ProviderCall]:
    """Time one provider request and count its outcome; the request's own errors pass on."""
    call = ProviderCall(operation)
    started = time.perf_counter()
    try:
        yield call
    except BaseException as exc:
        call.outcome = _fault(exc)
        raise
    finally:
        _provider_call(family, operation, call.outcome, time.perf_counter() - started)


@_quiet
def _provider_call(family: str, operation: Operation, outcome: str, seconds: float) -> None:
    m, family = _metrics(), _family(family)
    m.calls[operation].labels(family, outcome).inc()
    m.seconds[operation].labels(family).observe(seconds)
    if outcome == "rate_limited":
        m.rate_limited.labels(family, operation, "provider").inc()


def _fault(exc: BaseException) -> str:
    """The outcome word for an error, most specific class first (see ``errors``' tree)."""
    kinds: tuple[tuple[type[BaseException], str], ...] = (
        (SubmitOutcomeUnknownError, "outcome_unknown"), (RateLimitedError, "rate_limited"),
        (TaskNotFoundError, "not_found"), (TransientError, "transient_error"),
        (PermanentError, "permanent_error"))
    return next((word for cls, word in kinds if isinstance(exc, cls)), "error")


def timed_stage(stage: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Time every run of a delivery stage. The outcome is the stage's own answer when it is a
    word (``stored``, ``held``, ``skipped``), ``held`` for ``False``, ``done`` otherwise, and
    ``error`` when it raised (Celery retries it)."""
    def decorate(run: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(run)
        def timed(*args: P.args, **kwargs: P.kwargs) -> R:
            started, outcome = time.perf_counter(), "error"
            try:
                result = run(*args, **kwargs)
                outcome = result if isinstance(result, str) else (
                    "held" if result is False else "done")
                return result
            finally:
                _stage(stage, outcome, time.perf_counter() - started)
        return timed
    return decorate


@_quiet
def _stage(stage: str, outcome: str, seconds: float) -> None:
    _metrics().stage.labels(stage, outcome).observe(seconds)


# reading ---------------------------------------------------------------------------------
class _ThisProcess(Collector):
    """This process's own registry, inside a registry made for one scrape."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


class StoreCollector(Collector):
    """Jobs in flight, counted from the job store's sets when scraped: a few O(1)/O(log n)
    Redis calls, never a read of each record."""

    def __init__(self, store: JobStore) -> None:
        self.store = store

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily("videopoll_store_up", "1 when the job store answered the scrape")
        try:
            tallies = self.store.tallies(time.time())
        except Exception as exc:  # a scrape during an outage says so; it does not fail
            log.warning("job store not counted for /metrics: %s", type(exc).__name__)
            up.add_metric([], 0)
            return [up]
        jobs = GaugeMetricFamily(
            "videopoll_jobs_in_flight", "Jobs by where they wait: scheduled (next poll on "
            "time), overdue (for the sweeper), finishing (ended, notify/record owed), "
            "quarantined (unreadable)", labels=["state"])
        for state, count in tallies.items():
            jobs.add_metric([state], count)
        up.add_metric([], 1)
        return [jobs, up]


def registry_for(multiproc_dir: str | None, store: JobStore | None = None) -> CollectorRegistry:
    """What one scrape reads: every process writing to ``multiproc_dir``, or this one."""
    registry = CollectorRegistry(auto_describe=False)
    if multiproc_dir:
        MultiProcessCollector(registry, path=multiproc_dir)  # type: ignore[no-untyped-call]
    else:
        registry.register(_ThisProcess())
    if store is not None:
        registry.register(StoreCollector(store))
    return registry


def exposition(
    accept: str | None, multiproc_dir: str | None, store: JobStore | None = None
) -> tuple[bytes, str]:
    """The body and content type of a scrape, in the format the scraper asked for."""
    encode, content_type = choose_encoder(accept or "")
    return encode(registry_for(multiproc_dir, store)), content_type


def serve_worker_metrics(port: int | None, host: str, multiproc_dir: str | None) -> None:
    """Serve a worker's metrics on ``port``; a taken port is logged, never a dead worker."""
    if port is None:
        return
    try:
        start_http_server(port, addr=host, registry=registry_for(multiproc_dir))
    except OSError as exc:
        log.error("worker metrics not served on %s:%s: %s", host, port, exc)
        return
    log.info("worker metrics on http://%s:%s/metrics", host, port)
