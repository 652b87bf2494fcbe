"""``videopoll stats``: what the analytics stream says about models, failures and capacity.

Read-only: it reads the ``results`` stream (one event per finished job) and the due set (one
entry per job in flight), and prints per model the generation time (mean, p95), attempts,
failure rate and error codes, and cost per video; then the jobs in flight and how many more
the configured poll interval and the provider's status-rate budget leave room for.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections import Counter, defaultdict
from typing import Any

import redis
from pydantic import BaseModel

from videopoll.providers import PROVIDERS
from videopoll.settings import Settings

MAX_EVENTS = 100_000


class ModelStats(BaseModel):
    model: str
    jobs: int
    succeeded: int
    failure_rate: float
    mean_seconds: float | None
    p95_seconds: float | None
    mean_attempts: float | None
    errors: dict[str, int]
    cost_total: float | None
    cost_per_video: float | None


class Capacity(BaseModel):
    in_flight: int
    poll_interval_seconds: float
    status_requests_per_second: float
    polls_per_second_needed: float
    jobs_that_fit: int
    room_left: int


class Report(BaseModel):
    since: float | None
    events: int
    models: list[ModelStats]
    capacity: Capacity


def p95(values: list[float]) -> float | None:
    """The nearest-rank 95th percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def _number(raw: str | None) -> float | None:
    try:
        value = float(raw) if raw not in (None, "", "None", "null") else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def summarize(events: list[dict[str, str]]) -> list[ModelStats]:
    by_model: dict[str, list[dict[str, str]]] = defaultdict(list)
    for event in events:
        by_model[event.get("model", "?")].append(event)
    out = []
    for model, rows in sorted(by_model.items()):
        done = [r for r in rows if r.get("status") == "succeeded"]
        times = [t for r in done if (t := _number(r.get("totalTime"))) is not None]
        attempts = [a for r in done if (a := _number(r.get("attempts"))) is not None]
        costs = [c for r in rows if (c := _number(r.get("cost"))) is not None]
        errors = Counter(r.get("errorCode") or "unknown" for r in rows
                         if r.get("status") != "succeeded")
        out.append(ModelStats(
            model=model, jobs=len(rows), succeeded=len(done),
            failure_rate=round(1 - len(done) / len(rows), 4),
            mean_seconds=round(sum(times) / len(times), 3) if times else None,
            p95_seconds=p95(times),
            mean_attempts=round(sum(attempts) / len(attempts), 2) if attempts else None,
            errors=dict(errors.most_common()),
            cost_total=round(sum(costs), 4) if costs else None,
            cost_per_video=round(sum(costs) / len(done), 4) if costs and done else None,
        ))
    return out


def capacity(settings: Settings, in_flight: int) -> Capacity:
    """Jobs in flight poll once per interval each; the provider's status budget caps that."""
    interval = settings.poll_interval_seconds
    if settings.poll_schedule:
        interval = settings.poll_schedule[-1]  # the steady-state wait a long job settles into
    rate = settings.rate_limit_per_second or min(p.status_limit.rate for p in PROVIDERS.values())
    fit = int(rate * interval)
    return Capacity(in_flight=in_flight, poll_interval_seconds=interval,
                    status_requests_per_second=rate,
                    polls_per_second_needed=round(in_flight / interval, 3),
                    jobs_that_fit=fit, room_left=fit - in_flight)


def report(settings: Settings, client: redis.Redis, since_hours: float | None = None) -> Report:
    since = time.time() - since_hours * 3600 if since_hours else None
    start = f"{int(since * 1000)}-0" if since else "-"
    stream = f"{settings.key_prefix}:results"
    raw = client.xrevrange(stream, "+", start, count=MAX_EVENTS) or []
    events = [{_text(k): _text(v) for k, v in (fields or {}).items()} for _, fields in raw]
    in_flight = int(client.zcard(f"{settings.key_prefix}:due"))
    return Report(since=since, events=len(events), models=summarize(events),
                  capacity=capacity(settings, in_flight))


def render(rep: Report) -> str:
    lines = [f"{'model':<18}{'jobs':>6}{'ok':>6}{'fail%':>7}{'mean s':>9}{'p95 s':>9}"
             f"{'tries':>7}{'cost/video':>12}  top errors"]
    for m in rep.models:
        errors = ", ".join(f"{code} {n}" for code, n in list(m.errors.items())[:3])
        lines.append(
            f"{m.model:<18}{m.jobs:>6}{m.succeeded:>6}{m.failure_rate * 100:>6.1f}%"
            f"{_fmt(m.mean_seconds):>9}{_fmt(m.p95_seconds):>9}{_fmt(m.mean_attempts):>7}"
            f"{_fmt(m.cost_per_video):>12}  {errors}")
    c = rep.capacity
    lines.append(
        f"\nin flight: {c.in_flight} jobs, {c.polls_per_second_needed} polls/s at a "
        f"{c.poll_interval_seconds:g}s interval; the provider's {c.status_requests_per_second:g} "
        f"status requests/s fit {c.jobs_that_fit} jobs: room for {c.room_left} more")
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def plot(rep: Report, path: str) -> None:
    """Two charts in one PNG: generation time per model (mean and p95), failures by code.

    Drawn on a bare ``Figure`` (no pyplot, no display): matplotlib is the optional ``plot``
    extra, imported only here.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(10, 4.5), layout="constrained")
    times, failures = fig.subplots(1, 2)
    timed = [m for m in rep.models if m.mean_seconds is not None]
    rows = range(len(timed))
    times.barh([r - 0.2 for r in rows], [m.mean_seconds or 0 for m in timed], height=0.4,
               label="mean", color="#0969da")
    times.barh([r + 0.2 for r in rows], [m.p95_seconds or 0 for m in timed], height=0.4,
               label="p95", color="#9a6700")
    times.set_yticks(list(rows), [m.model for m in timed])
    times.set(title="Generation time per model", xlabel="seconds")
    times.legend(loc="lower right")
    codes: Counter[str] = Counter()
    for m in rep.models:
        codes.update(m.errors)
    ordered = codes.most_common()
    failures.barh([code for code, _ in ordered], [n for _, n in ordered], color="#cf222e")
    failures.set(title="Failures by code", xlabel="jobs")
    failures.xaxis.set_major_locator(MaxNLocator(integer=True))
    failures.invert_yaxis()  # the commonest on top
    for ax, empty in ((times, not timed), (failures, not ordered)):
        if empty:
            ax.text(0.5, 0.5, "none in this window", ha="center", va="center",
                    transform=ax.transAxes)
    fig.savefig(path, dpi=100)


def main(settings: Settings, as_json: bool, since_hours: float | None,
         plot_path: str | None = None) -> int:
    if plot_path is not None:
        try:
            import matplotlib  # noqa: F401 - only to say it is missing before any work
        except ImportError:
            print("error: --plot needs matplotlib: pip install 'videopoll[plot]'",
                  file=sys.stderr)
            return 2
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=5)
    try:
        rep = report(settings, client, since_hours)
    except redis.RedisError as exc:  # the URL may carry a password: name only the fault
        print(f"error: cannot read the job store: {type(exc).__name__}", file=sys.stderr)
        return 2
    print(json.dumps(rep.model_dump(), indent=2) if as_json else render(rep))
    if plot_path is not None:
        try:
            plot(rep, plot_path)
        except OSError as exc:
            print(f"error: cannot write {plot_path}: {exc.strerror}", file=sys.stderr)
            return 2
        print(f"plot written to {plot_path}", file=sys.stderr)
    return 0
